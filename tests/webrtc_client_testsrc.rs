//! rts-webrtc's client side ([`rts::webrtc::Peer::offer`], driven by the
//! `rts-probe` example) plays `whep-testsrc` over real UDP on 127.0.0.1:
//! full ICE against the ICE-lite server, DTLS client, SRTP; rts-rtp's
//! reorder buffer and depacketizer make H.264 access units of the video,
//! and Opus packets are counted.
//! Both ends are this project (the client is a measurement tool);
//! Chromium against the same server is `webrtc_whep_chromium.rs`.

mod webrtc_common;

use std::process::Command;
use std::time::Duration;

use webrtc_common::Server;

fn probe(args: &[&str]) -> (Option<i32>, String, String) {
    let out = rts_testkit::run(
        Command::new(rts_testkit::example_bin("rts-probe")).args(args),
        "rts-probe",
        Duration::from_secs(60),
    )
    .expect("rts-probe ends");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn client_plays_whep_testsrc() {
    let server = Server::start("whep-testsrc");
    let url = format!("http://{}/live/test/whep", server.http);
    let (code, stdout, stderr) = probe(&["--play", &url, "--duration", "3"]);
    assert_eq!(code, Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(v["play"], "whep");
    // 30 fps video and 50 Opus packets/s for 3 s; generous floors.
    let frames = v["frames_received"].as_u64().unwrap();
    let audio = v["audio_packets"].as_u64().unwrap();
    assert!(frames >= 45, "H.264 access units: {frames}\n{stderr}");
    assert!(audio >= 75, "Opus packets: {audio}\n{stderr}");
    assert!(v["first_frame_ms"].as_f64().is_some(), "{v}");
    // whep-testsrc's frames carry no wall-clock SEI.
    assert_eq!(v["samples"], 0);
}

#[test]
fn client_reports_http_errors() {
    let server = Server::start("whep-testsrc");
    let url = format!("http://{}/live/absent/whep", server.http);
    let (code, stdout, stderr) = probe(&["--play", &url, "--duration", "1"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    let (code, _, stderr) = probe(&["--play", "ftp://x/y"]);
    assert_eq!(code, Some(2), "bad arguments: {stderr}");
}
