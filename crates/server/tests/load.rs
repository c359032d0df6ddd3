//! A bounded load on loopback: 5 publishers (ffmpeg, `-re -c copy`) and 20
//! HTTP-FLV viewers each, about 10 s. Every viewer gets every frame from
//! where it joined (no timestamp gap), and no viewer is dropped. The full
//! 20 publishers with 200 RTMP, FLV and WHEP viewers for 10 minutes is
//! `crates/server/examples/rts-soak.rs` (docs/PERFORMANCE.md).

use std::process::{Command, Stdio};
use std::time::Duration;

use rts_testkit::ChildGuard;

mod common;
use common::*;

#[test]
fn five_publishers_twenty_flv_viewers_each() {
    let (Some(ffmpeg), Some(file)) = (
        rts_testkit::tool("ffmpeg"),
        rts_testkit::fixture("media/baseline_aaclc44k.flv"),
    ) else {
        return;
    };
    let s = server(|_| {});
    let mut publishers = Vec::new();
    for i in 0..5 {
        let mut cmd = Command::new(&ffmpeg);
        cmd.args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "2",
            "-i",
        ])
        .arg(&file)
        .args([
            "-c",
            "copy",
            "-f",
            "flv",
            &s.signed_rtmp(&format!("load{i}")),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        publishers.push(ChildGuard::spawn(&mut cmd, "ffmpeg publish").unwrap());
    }
    let mut viewers = Vec::new();
    for i in 0..5 {
        let name = format!("load{i}");
        s.wait_publishing(&name);
        for _ in 0..20 {
            let k = sign(&format!("/live/{name}.flv"), now(), PLAY_KEY);
            let path = format!("/live/{name}.flv?auth_key={k}");
            let addr = s.http;
            viewers.push(std::thread::spawn(move || read_flv(addr, &path)));
        }
    }
    wait_for("100 viewers", || {
        s.api("/api/v1/streams").is_some_and(|v| {
            v["streams"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["viewers"]["flv"].as_u64().unwrap())
                .sum::<u64>()
                == 100
        })
    });
    for mut p in publishers {
        let out = p.wait_timeout(Duration::from_secs(60)).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut min = usize::MAX;
    for v in viewers {
        let (frames, max_gap, _) = v.join().unwrap();
        assert!(max_gap < 100, "a viewer lost frames: {max_gap} ms step");
        assert!(frames + 60 >= 270, "a viewer got {frames} of 270 frames");
        min = min.min(frames);
    }
    eprintln!("100 viewers: each got at least {min} of 270 video frames, no gap");
    let metrics = s.metrics();
    assert!(
        metrics.contains("rts_errors_total{kind=\"slow_viewer\"} 0\n"),
        "{metrics}"
    );
}
