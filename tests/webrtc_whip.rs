//! Real publishers into `whip-sink`: headless Chromium (fake camera and
//! microphone) and FFmpeg 8+ (`-f whip`). The sink depacketizes (rts-rtp)
//! and decodes (openh264) what rts-webrtc received and prints a JSON
//! summary when the session ends.

mod webrtc_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use rts_testkit::{browser, node_json};
use webrtc_common::Server;

/// POSTs an SDP body and returns the HTTP status.
fn post_status(http: &str, path: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(http).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn summary(server: &mut Server, stream: &str) -> serde_json::Value {
    let line = server
        .wait_line(
            |l| l.starts_with('{') && l.contains(&format!("\"stream\":\"{stream}\"")),
            Duration::from_secs(30),
        )
        .expect("the sink prints a summary when the session ends");
    serde_json::from_str(&line).expect("summary JSON")
}

const MINIMAL_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n";

#[test]
fn chromium_publishes_to_whip_sink() {
    let Some((node, dir)) = browser() else { return };
    let mut server = Server::start("whip-sink");
    let url = format!("http://{}/live/cam/whip", server.http);
    let driver = {
        let (node, dir, url) = (node.clone(), dir.clone(), url.clone());
        std::thread::spawn(move || {
            node_json(
                &node,
                &dir,
                "whip_publish.js",
                &[&url, "5"],
                Duration::from_secs(90),
            )
        })
    };
    // While Chromium publishes, a second publisher for the stream gets 409.
    server
        .wait_line(
            |l| l == "publisher live/cam connected",
            Duration::from_secs(30),
        )
        .expect("Chromium connects");
    assert_eq!(
        post_status(&server.http, "/live/cam/whip", MINIMAL_OFFER),
        409
    );

    let r = driver.join().expect("driver thread");
    eprintln!("whip_publish: {r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["deleteStatus"], 200);
    let s = summary(&mut server, "live/cam");
    eprintln!("whip-sink: {s}");
    let sent = r["video"]["framesSent"].as_f64().unwrap_or(0.0);
    let decoded = s["decoded_frames"].as_f64().unwrap_or(0.0);
    assert_eq!(s["video_codec"], "H264");
    assert!(sent >= 30.0, "Chromium sent only {sent} frames");
    assert!(
        decoded >= 0.9 * sent,
        "decoded {decoded} of {sent} frames sent"
    );
    assert!(s["keyframes"].as_u64().unwrap_or(0) >= 1);
    assert_eq!(s["audio_codec"], "opus");
    assert!(s["audio_packets"].as_u64().unwrap_or(0) > 50, "{s}");

    // DELETE freed the session: the stream can be published again (this
    // offer has no usable codec, so 400 instead of 409).
    assert_eq!(
        post_status(&server.http, "/live/cam/whip", MINIMAL_OFFER),
        400
    );
}

#[test]
fn ffmpeg_publishes_to_whip_sink() {
    let Some(ffmpeg) = rts_testkit::modern_ffmpeg() else {
        return;
    };
    let mut server = Server::start("whip-sink");
    let url = format!("http://{}/live/ff/whip", server.http);
    let out = rts_testkit::run(
        Command::new(ffmpeg).args([
            "-hide_banner",
            "-loglevel",
            "warning",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-bf",
            "0",
            "-g",
            "30",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "libopus",
            "-ar",
            "48000",
            "-ac",
            "2",
            "-f",
            "whip",
            &url,
        ]),
        "ffmpeg -f whip",
        Duration::from_secs(60),
    )
    .expect("ffmpeg ran");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        rts_testkit::tail(&out.stderr, 3000)
    );
    let s = summary(&mut server, "live/ff");
    eprintln!("whip-sink: {s}");
    let frames = s["video_frames"].as_f64().unwrap_or(0.0);
    assert_eq!(s["video_codec"], "H264");
    assert!(frames >= 90.0, "only {frames} frames of 120 arrived");
    assert!(
        s["decoded_frames"].as_f64().unwrap_or(0.0) >= 0.9 * frames,
        "{s}"
    );
    assert_eq!(s["audio_codec"], "opus");
    assert!(s["audio_packets"].as_u64().unwrap_or(0) > 100, "{s}");
}
