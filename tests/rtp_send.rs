//! The `rtp-send` example against a real receiver: ffmpeg opens the SDP the
//! example writes (sprop-parameter-sets, packetization-mode 1; Opus),
//! receives the H.264 and Opus RTP and decodes every frame that was sent.

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rts_testkit::{ChildGuard, example_bin, fixture, tail, tool};

/// An even UDP port with the next three free: video RTP/RTCP, audio RTP/RTCP.
fn free_rtp_port() -> u16 {
    for _ in 0..100 {
        let Ok(a) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(port) = a.local_addr().map(|a| a.port()) else {
            continue;
        };
        let even = port & !1;
        drop(a);
        if even < 65530 && (even..even + 4).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            return even;
        }
    }
    panic!("no free even UDP port pair on 127.0.0.1");
}

#[test]
fn ffmpeg_decodes_every_frame_sent() {
    let Some(ffmpeg) = tool("ffmpeg") else { return };
    let Some(flv) = fixture("media/baseline_aaclc44k.flv") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("rts-rtp-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sdp = dir.join("out.sdp");
    let _ = std::fs::remove_file(&sdp);
    let port = free_rtp_port();

    // The sender writes the SDP, then waits --start-delay before sending:
    // the documented way to let a receiver start first.
    let mut sender = ChildGuard::spawn(
        Command::new(example_bin("rtp-send"))
            .arg(&flv)
            .args(["--to", &format!("127.0.0.1:{port}"), "--sdp"])
            .arg(&sdp)
            .args(["--start-delay", "3000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "rtp-send",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sdp.is_file() {
        assert!(
            Instant::now() < deadline,
            "rtp-send wrote no SDP within 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let text = std::fs::read_to_string(&sdp).unwrap();
    assert!(
        text.contains(
            "a=fmtp:96 packetization-mode=1;profile-level-id=42c01e;sprop-parameter-sets="
        ),
        "{text}"
    );

    let mut receiver = ChildGuard::spawn(
        Command::new(ffmpeg)
            .args(["-hide_banner", "-nostats", "-loglevel", "warning"])
            .args([
                "-protocol_whitelist",
                "file,udp,rtp",
                "-buffer_size",
                "4194304",
                "-i",
            ])
            .arg(&sdp)
            .args(["-f", "framecrc", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "ffmpeg",
    )
    .unwrap();
    let sent = sender.wait_timeout(Duration::from_secs(60)).unwrap();
    assert!(
        sent.status.success(),
        "rtp-send failed: {}",
        tail(&sent.stderr, 2000)
    );
    let line = String::from_utf8_lossy(&sent.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let frames_sent: usize = line
        .strip_prefix("sent ")
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected rtp-send output {line:?}"));
    assert_eq!(frames_sent, 90, "the fixture has 90 video frames");
    let audio_sent: usize = line
        .rsplit(", ")
        .next()
        .and_then(|l| l.strip_suffix(" audio frames"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected rtp-send output {line:?}"));
    // 3 s of 20 ms Opus frames.
    assert!((140..=160).contains(&audio_sent), "{line}");
    assert!(
        text.contains("m=audio") && text.contains("a=rtpmap:111 opus/48000/2"),
        "{text}"
    );

    // ffmpeg stops on the RTCP BYEs the sender ends with.
    let got = receiver.wait_timeout(Duration::from_secs(30)).unwrap();
    let stderr = tail(&got.stderr, 3000);
    assert!(got.status.success(), "ffmpeg failed: {stderr}");
    let out = String::from_utf8_lossy(&got.stdout).into_owned();
    let decoded = out.lines().filter(|l| l.starts_with("0,")).count();
    let decoded_audio = out.lines().filter(|l| l.starts_with("1,")).count();
    assert_eq!(
        decoded, frames_sent,
        "ffmpeg decoded {decoded} of {frames_sent} frames; stderr: {stderr}"
    );
    assert_eq!(
        decoded_audio, audio_sent,
        "ffmpeg decoded {decoded_audio} of {audio_sent} Opus frames; stderr: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
