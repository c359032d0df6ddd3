//! `rts-probe` through the server's WHEP play on loopback: RTMP publish of
//! a generated stream (constrained baseline, no B-frames, a wall-clock SEI
//! in every frame), played back over WebRTC by rts-webrtc's client side
//! (full ICE, DTLS client) from `POST /{app}/{stream}/whep?auth_key=…`.
//! The SEI surviving the server's conversion branch (passthrough, and
//! `bframes = "transcode"`: decoded and re-encoded) is what makes the
//! latency samples; the AAC tone bursts found in the Opus that comes back
//! give the A/V offset after sender-report mapping. Our own stack on both ends (a measurement tool);
//! Chromium plays the same endpoint in the browser tests. Only generous
//! bounds are asserted; the figures go to docs/PERFORMANCE.md.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{PLAY_KEY, now, server, sign};

/// Runs the probe RTMP -> WHEP on `s` for stream `name` (4 s, 320x180,
/// then `extra` arguments); checks the report and returns it.
fn probe_whep(s: &common::TestServer, name: &str, extra: &[&str]) -> serde_json::Value {
    let publish = s.signed_rtmp(name);
    let key = sign(&format!("/live/{name}"), now(), PLAY_KEY);
    let play = format!("http://{}/live/{name}/whep?auth_key={key}", s.http);
    let mut args = vec![
        "--publish",
        &publish,
        "--play",
        &play,
        "--duration",
        "4",
        "--size",
        "320x180",
    ];
    args.extend_from_slice(extra);
    let v = common::run_probe(&args);
    eprintln!("whep: {v}");
    assert_eq!(v["play"], "whep");
    let sent = v["frames_sent"].as_u64().unwrap();
    let received = v["frames_received"].as_u64().unwrap();
    let samples = v["samples"].as_u64().unwrap();
    assert!(sent >= 60, "{v}");
    assert!(received * 10 >= sent * 8, "at least 80% of the frames: {v}");
    assert!(
        samples * 10 >= received * 9,
        "the wall-clock SEI survives the branch in (nearly) every frame: {v}"
    );
    let p50 = v["latency_ms"]["p50"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 1000.0, "p50 {p50} ms: {v}");
    let first = v["first_frame_ms"].as_f64().unwrap();
    assert!(first < 5000.0, "first frame after {first} ms: {v}");
    // Audio: the fixture's AAC, one tone burst a second, comes back as
    // Opus; each burst, mapped through the audio track's sender reports,
    // lines up with video of the same media time through the video's.
    let audio = &v["audio"];
    assert_eq!(audio["decode_errors"], 0, "{v}");
    let bursts = audio["bursts"].as_u64().unwrap();
    assert!(bursts >= 3, "4 s of audio carry 4 bursts: {v}");
    for q in ["min", "max"] {
        let off = audio["av_offset_ms"][q].as_f64().unwrap();
        assert!(off.abs() <= 20.0, "A/V offset {q} {off} ms: {v}");
    }
    v
}

#[test]
fn probe_rtmp_to_whep() {
    let s = server(|_| {});
    probe_whep(&s, "pw", &[]);

    // A WHEP offer with a wrong key: 403 and the reason, exit code 1.
    let bad = sign("/live/pw", now(), "not-the-key");
    let play = format!("http://{}/live/pw/whep?auth_key={bad}", s.http);
    let out = rts_testkit::run(
        Command::new(rts_testkit::example_bin("rts-probe")).args([
            "--play",
            &play,
            "--duration",
            "1",
        ]),
        "rts-probe",
        Duration::from_secs(30),
    )
    .expect("rts-probe ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 403"), "{stderr}");
}

#[test]
fn probe_rtmp_to_whep_through_the_transcoder() {
    // Every frame decoded and re-encoded by the branch: the wall-clock SEI
    // must be carried through (what the web player and the probe read).
    let s = server(|c| c.webrtc.bframes = rts_server::config::BFrames::Transcode);
    let http = s.http;
    // The stream's series goes when the stream does: watch while it runs.
    let watch = std::thread::spawn(move || {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < end {
            let m = common::http_get(http, "/metrics", &[("Authorization", "Bearer test-token")]).1;
            if String::from_utf8_lossy(&m).lines().any(|l| {
                l.starts_with("rts_conversion_seconds_total")
                    && l.contains("kind=\"video\"")
                    && l.contains("live/pt")
            }) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100)); // polling interval
        }
        false
    });
    probe_whep(&s, "pt", &[]);
    assert!(
        watch.join().unwrap(),
        "the video transcoder ran (rts_conversion_seconds_total)"
    );
}

#[test]
fn probe_late_joiner_to_a_10_s_gop() {
    // Joins 3 s into a 10 s GOP (no B-frames: passthrough): the viewer
    // starts at the cached keyframe and gets the GOP so far at once, then
    // live frames; the burst must not be lost on the way.
    let s = server(|_| {});
    let v = probe_whep(
        &s,
        "late",
        &[
            "--size",
            "640x360",
            "--duration",
            "8",
            "--gop-seconds",
            "10",
            "--join-after",
            "3",
        ],
    );
    assert_eq!(
        v["frames_received"], v["frames_sent"],
        "every frame, the GOP so far included: {v}"
    );
    let oldest = v["latency_ms"]["max"].as_f64().unwrap();
    assert!(
        oldest > 2000.0,
        "the first frame is the cached keyframe, sent about 3 s before: {v}"
    );
}

/// The probe publishing over WHIP (rts-webrtc's client side, rts-rtp's
/// packetizer) and playing over WHEP: the server forwards the publisher's
/// packets, and the wall-clock SEI of (nearly) every frame arrives.
#[test]
fn probe_publishes_over_whip_and_plays_the_forwarded_stream() {
    let s = server(|_| {});
    let (whip, key) = s.whip("pw");
    let publish = format!("{whip}?auth_key={key}");
    let play = s.signed_whep("pw");
    let v = common::run_probe(&[
        "--publish",
        &publish,
        "--play",
        &play,
        "--duration",
        "4",
        "--size",
        "320x180",
    ]);
    eprintln!("whip -> whep: {v}");
    let sent = v["frames_sent"].as_u64().unwrap();
    let received = v["frames_received"].as_u64().unwrap();
    let samples = v["samples"].as_u64().unwrap();
    assert!(sent >= 60, "{v}");
    assert!(received * 10 >= sent * 8, "at least 80% of the frames: {v}");
    assert!(samples * 10 >= received * 9, "the SEI is forwarded: {v}");
    let p50 = v["latency_ms"]["p50"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 1000.0, "p50 {p50} ms: {v}");
}
