//! rts-webrtc's client side publishing (WHIP, [`rts::webrtc::Peer::offer`]
//! with `Role::Viewer`: the server receives) to `whip-sink` over real UDP
//! on 127.0.0.1: openh264 frames packetized by rts-rtp and an Opus tone;
//! the sink depacketizes and decodes (openh264) what it received and
//! prints a summary when the session is DELETEd. Both ends are this
//! project; Chromium and FFmpeg publish to the same sink in
//! `webrtc_whip.rs`.

mod webrtc_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use openh264::OpenH264API;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, Profile};
use openh264::formats::YUVBuffer;
use rts::rtp::{h264, opus};
use rts::webrtc::{Certificate, Config, Event, MediaKind, Peer, Role};
use webrtc_common::Server;

/// One HTTP/1.1 exchange (`Connection: close`): status, headers, body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn frame(n: u32) -> YUVBuffer {
    let (w, h) = (320usize, 180usize);
    let mut yuv = vec![128u8; w * h * 3 / 2];
    for y in 0..h {
        for x in 0..w {
            yuv[y * w + x] = ((x + y + n as usize * 4) % 256) as u8;
        }
    }
    YUVBuffer::from_vec(yuv, w, h)
}

#[test]
fn client_publishes_to_whip_sink() {
    let mut server = Server::start("whip-sink");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local: SocketAddr = socket.local_addr().unwrap();
    let config = Config {
        local_addr: local,
        candidates: vec![local],
        certificate: Certificate::generate().unwrap(),
        ice_ufrag: "pubufrag".into(),
        ice_pwd: "publisher-password-0123456".into(),
        video_ssrc: 0x0bad_cafe,
        audio_ssrc: 0x0bad_f00d,
        idle_timeout: Duration::from_secs(10),
        stats_interval: Duration::from_secs(1),
        tcp_candidates: Vec::new(),
    };
    let (mut peer, offer) = Peer::offer(Instant::now(), Role::Viewer, &config).unwrap();
    let (status, head, answer) = http(&server.http, "POST", "/live/rs/whip", &offer);
    assert_eq!(status, 201, "{head}\n{answer}");
    let location = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .expect("a Location header");
    peer.accept_answer(Instant::now(), &answer).unwrap();

    let cfg = EncoderConfig::new()
        .bitrate(BitRate::from_bps(300_000))
        .max_frame_rate(FrameRate::from_hz(30.0))
        .profile(Profile::Baseline)
        .skip_frames(false);
    let mut enc = Encoder::with_api_config(OpenH264API::from_source(), cfg).unwrap();
    let mut vpk = h264::Packetizer::new(h264::Config {
        mtu: 1200,
        ..Default::default()
    })
    .unwrap();
    let mut apk = opus::Packetizer::new(opus::Config::default());
    let mut opus_enc =
        rts_opus_sys::Encoder::new(48_000, 2, rts_opus_sys::Application::Audio).unwrap();
    let pcm: Vec<f32> = (0..1920)
        .map(|i| (((i / 2) as f64 * 440.0 / 48_000.0 * std::f64::consts::TAU).sin() * 0.18) as f32)
        .collect();
    let mut opus_buf = vec![0u8; 1500];

    let mut buf = [0u8; 2048];
    let (mut frames_sent, mut audio_sent) = (0u32, 0u32);
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while frames_sent < 90 {
        assert!(Instant::now() < deadline, "publishing did not finish");
        while let Some(t) = peer.poll_transmit() {
            socket.send_to(&t.contents, t.destination).unwrap();
        }
        while let Some(ev) = peer.poll_event() {
            match ev {
                Event::Connected => started = Some(Instant::now()),
                Event::Disconnected { reason } => panic!("disconnected: {reason}"),
                _ => {}
            }
        }
        let now = Instant::now();
        if let Some(t0) = started {
            // 30 fps video, 50 Opus packets a second, in real time.
            if now >= t0 + Duration::from_millis(33) * frames_sent {
                if frames_sent == 0 {
                    enc.force_intra_frame();
                }
                let au = Bytes::from(enc.encode(&frame(frames_sent)).unwrap().to_vec());
                let mut out = Vec::new();
                vpk.packetize(&au, h264::Format::AnnexB, frames_sent * 3000, &mut out)
                    .unwrap();
                for p in &out {
                    assert!(peer.send_rtp(now, MediaKind::Video, p).unwrap());
                }
                frames_sent += 1;
            }
            if now >= t0 + Duration::from_millis(20) * audio_sent {
                let n = opus_enc.encode_float(&pcm, &mut opus_buf).unwrap();
                let p = apk.packetize(Bytes::copy_from_slice(&opus_buf[..n]), audio_sent * 960);
                assert!(peer.send_rtp(now, MediaKind::Audio, &p).unwrap());
                audio_sent += 1;
            }
        }
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = peer.handle_receive(Instant::now(), from, &buf[..n]);
        }
        let now = Instant::now();
        if peer.poll_timeout().is_some_and(|t| t <= now) {
            let _ = peer.handle_timeout(now);
        }
    }
    while let Some(t) = peer.poll_transmit() {
        socket.send_to(&t.contents, t.destination).unwrap();
    }
    let (status, head, _) = http(&server.http, "DELETE", &location, "");
    assert_eq!(status, 200, "{head}");
    let line = server
        .wait_line(
            |l| l.starts_with('{') && l.contains("\"stream\":\"live/rs\""),
            Duration::from_secs(30),
        )
        .expect("the sink prints a summary when the session ends");
    let s: serde_json::Value = serde_json::from_str(&line).unwrap();
    eprintln!("whip-sink: {s}");
    assert_eq!(s["video_codec"], "H264", "{s}");
    let decoded = s["decoded_frames"].as_u64().unwrap_or(0);
    assert!(
        decoded * 10 >= u64::from(frames_sent) * 9,
        "decoded {decoded} of {frames_sent}: {s}"
    );
    assert!(s["keyframes"].as_u64().unwrap_or(0) >= 1, "{s}");
    assert_eq!(s["audio_codec"], "opus", "{s}");
    assert!(
        s["audio_packets"].as_u64().unwrap_or(0) * 10 >= u64::from(audio_sent) * 9,
        "{audio_sent} Opus packets sent: {s}"
    );
}
