//! Push to a remote RTMP server (`push` on an ingest domain): ffmpeg
//! publishes x264 and AAC to server A, whose ingest domain pushes every
//! stream to server B, signed with B's ingest key. B is down at first: the
//! push retries with back-off, visibly in A's API; once B listens the push
//! connects by itself, and ffmpeg decodes B's HTTP-FLV of the stream.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rts_server::config::{DomainKind, Push};
use rts_testkit::ChildGuard;

#[test]
fn a_push_retries_until_the_remote_is_up_then_the_remote_plays_it() {
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let b_port = rts_testkit::free_tcp_port();
    let a = server(|c| {
        for d in &mut c.domains {
            if d.kind == DomainKind::Ingest {
                d.push = vec![Push {
                    url: format!("rtmp://127.0.0.1:{b_port}/live"),
                    key: Some(INGEST_KEY.into()),
                }];
            }
        }
    });
    let mut cmd = Command::new(&ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "30"])
        .args(["-c:a", "aac", "-f", "flv", &a.signed_rtmp("pushed")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let _publisher = ChildGuard::spawn(&mut cmd, "ffmpeg publish").unwrap();
    a.wait_publishing("pushed");
    let push = |s: &TestServer| s.stream("pushed").map(|v| v["pushes"][0].clone());
    wait_for("the push to fail and retry", || {
        push(&a)
            .is_some_and(|p| p["attempts"].as_u64().unwrap_or(0) >= 1 && p["state"] == "retrying")
    });
    let p = push(&a).unwrap();
    eprintln!("while B is down: {p}");
    assert_eq!(
        p["url"],
        format!("rtmp://127.0.0.1:{b_port}/live/pushed"),
        "no key shown"
    );
    assert!(
        p["last_error"].as_str().unwrap_or("").contains("connect"),
        "{p}"
    );

    let b = server(|c| {
        c.listen.rtmp = SocketAddr::from(([127, 0, 0, 1], b_port));
    });
    wait_for("B to get the pushed stream", || {
        b.stream("pushed").is_some_and(|v| v["publishing"] == true)
    });
    wait_for("A to show the push publishing", || {
        push(&a).is_some_and(|p| p["state"] == "publishing" && p["connects"] == 1)
    });
    let info = b.stream("pushed").unwrap();
    assert_eq!(info["video_codec"], "h264", "{info}");
    assert_eq!(info["audio_codec"], "aac", "{info}");
    let out = rts_testkit::run_ok(
        Command::new(&ffmpeg)
            .args(["-hide_banner", "-v", "error", "-i", &b.signed_flv("pushed")])
            .args(["-t", "2", "-f", "framecrc", "-"]),
        "ffmpeg reading B's HTTP-FLV",
        Duration::from_secs(60),
    )
    .unwrap();
    let count = |stream: &str| {
        out.lines()
            .filter(|l| !l.starts_with('#') && l.split(',').next().map(str::trim) == Some(stream))
            .count()
    };
    let (video, audio) = (count("0"), count("1"));
    eprintln!("B's HTTP-FLV of the pushed stream: {video} video, {audio} audio frames in 2 s");
    assert!(video >= 40, "{video} video frames");
    assert!(audio >= 60, "{audio} AAC frames");
    let p = push(&a).unwrap();
    assert!(p["bytes_out"].as_u64().unwrap_or(0) > 100_000, "{p}");
}
