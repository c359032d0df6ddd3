//! The same source through this server and a reference WebRTC server in
//! the same run: aiortc from PyPI (`tests/reference/aiortc_whep.py`: RTMP
//! in, H.264 passed through unchanged, AAC decoded and encoded to Opus),
//! both measured by `rts-probe` (real AAC beside stamped video, WHEP play).
//! The figures go to docs/PERFORMANCE.md; only generous bounds are
//! asserted here. Skips without python3 and aiortc (CI installs them).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{PLAY_KEY, now, server, sign};
use rts_testkit::{ChildGuard, free_tcp_port};

/// Runs the probe for `secs` from `publish` to `play`; its report.
fn probe(publish: &str, play: &str, secs: u32) -> serde_json::Value {
    let secs = secs.to_string();
    common::run_probe(&["--publish", publish, "--play", play, "--duration", &secs])
}

fn has_aiortc(python: &std::path::Path) -> bool {
    Command::new(python)
        .args(["-c", "import aiortc, aiohttp, av"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Every frame and the audio both ways; the figures printed side by side.
fn check(v: &serde_json::Value, who: &str) {
    let sent = v["frames_sent"].as_u64().unwrap();
    let received = v["frames_received"].as_u64().unwrap();
    assert!(received * 10 >= sent * 8, "{who}: 80% of the frames: {v}");
    let p50 = v["steady_latency_ms"]["p50"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 1000.0, "{who}: steady p50 {p50} ms: {v}");
    assert!(
        v["audio"]["bursts"].as_u64().unwrap() >= 5,
        "{who}: audio: {v}"
    );
}

#[test]
fn rts_and_aiortc_side_by_side() {
    let Some(python) = rts_testkit::tool("python3") else {
        return;
    };
    if !has_aiortc(&python) {
        let _: Option<()> =
            rts_testkit::skip("python3 has no aiortc (pip install aiortc aiohttp; CI does)");
        return;
    }
    let (rtmp, http) = (free_tcp_port(), free_tcp_port());
    let script = rts_testkit::workspace_root().join("tests/reference/aiortc_whep.py");
    let mut reference = ChildGuard::spawn(
        Command::new(&python)
            .arg(&script)
            .args(["--rtmp", &format!("127.0.0.1:{rtmp}")])
            .args(["--http", &format!("127.0.0.1:{http}")])
            .stdout(Stdio::piped()),
        "aiortc_whep.py",
    )
    .unwrap();
    assert!(
        reference
            .wait_for_line(|l| l == "ready", Duration::from_secs(30))
            .is_some(),
        "the aiortc server starts"
    );
    let secs = 10;
    let theirs = probe(
        &format!("rtmp://127.0.0.1:{rtmp}/live/ref"),
        &format!("http://127.0.0.1:{http}/whep"),
        secs,
    );
    let s = server(|_| {});
    let key = sign("/live/side", now(), PLAY_KEY);
    let ours = probe(
        &s.signed_rtmp("side"),
        &format!("http://{}/live/side/whep?auth_key={key}", s.http),
        secs,
    );
    for (who, v) in [("aiortc", &theirs), ("rts", &ours)] {
        eprintln!(
            "{who}: video steady p50 {} p95 {} ms, audio p50 {} ms, A/V offset p50 {} ms",
            v["steady_latency_ms"]["p50"],
            v["steady_latency_ms"]["p95"],
            v["audio"]["latency_ms"]["p50"],
            v["audio"]["av_offset_ms"]["p50"],
        );
        check(v, who);
    }
}
