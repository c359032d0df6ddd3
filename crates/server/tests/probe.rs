//! `rts-probe` against an in-process rts-server on loopback: RTMP publish
//! of a generated stream whose every frame carries its wall-clock send
//! time (SEI), played back over HTTP-FLV, with signed URLs. Our own stack
//! is on both ends (publisher, server and player): acceptable for a
//! measurement tool; the real-peer interop of each protocol is proven
//! elsewhere (server_interop.rs, webrtc_whep_chromium.rs). Only generous
//! bounds are asserted; the measured figures go to docs/PERFORMANCE.md.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{INGEST_KEY, now, server, sign};

fn probe(args: &[&str]) -> (Option<i32>, String, String) {
    let out = rts_testkit::run(
        Command::new(rts_testkit::example_bin("rts-probe")).args(args),
        "rts-probe",
        Duration::from_secs(90),
    )
    .expect("rts-probe ends");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks the JSON report of a successful run.
fn check_report(stdout: &str, stderr: &str, play: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON line ({e}): {stdout}\n{stderr}"));
    assert_eq!(v["play"], play);
    let sent = v["frames_sent"].as_u64().unwrap();
    let received = v["frames_received"].as_u64().unwrap();
    let samples = v["samples"].as_u64().unwrap();
    assert!(sent >= 60, "frames sent: {v}\n{stderr}");
    assert!(
        received * 10 >= sent * 8,
        "at least 80% of the frames: {v}\n{stderr}"
    );
    assert!(samples > 0 && samples <= received, "{v}");
    let p50 = v["latency_ms"]["p50"].as_f64().unwrap();
    let p99 = v["latency_ms"]["p99"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 1000.0, "p50 {p50} ms: {v}");
    assert!(p99 >= p50, "{v}");
    let first = v["first_frame_ms"].as_f64().unwrap();
    assert!(first < 5000.0, "first frame after {first} ms: {v}");
    v
}

#[test]
fn probe_rtmp_to_flv() {
    let s = server(|_| {});
    let publish = s.signed_rtmp("probe");
    let play = s.signed_flv("probe");
    let (code, stdout, stderr) = probe(&[
        "--publish",
        &publish,
        "--play",
        &play,
        "--duration",
        "4",
        "--size",
        "320x180",
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let v = check_report(&stdout, &stderr, "flv");
    eprintln!("flv: {v}");
}

#[test]
fn probe_explains_refusals() {
    let s = server(|_| {});
    // A play URL signed with the wrong key: 403 with the server's reason.
    let bad = sign("/live/p403.flv", now(), "not-the-key");
    let play = format!("http://{}/live/p403.flv?auth_key={bad}", s.http);
    let (code, stdout, stderr) = probe(&[
        "--publish",
        &s.signed_rtmp("p403"),
        "--play",
        &play,
        "--duration",
        "1",
        "--size",
        "160x90",
    ]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    // A publish URL signed with the wrong key: the RTMP refusal.
    let k = sign("/live/x", now(), &format!("{INGEST_KEY}-wrong"));
    let (code, stdout, stderr) = probe(&[
        "--publish",
        &s.rtmp_url("live", "x", Some(k)),
        "--play",
        &s.signed_flv("x"),
        "--duration",
        "1",
    ]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("publish"), "{stderr}");
    // Bad arguments.
    let (code, _, stderr) = probe(&["--play", "http://h/a.flv", "--fps", "zero"]);
    assert_eq!(code, Some(2), "{stderr}");
}
