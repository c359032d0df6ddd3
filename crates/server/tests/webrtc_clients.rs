//! WebRTC play from rts-server with clients we did not write, on loopback:
//! headless Chromium through a lossy UDP relay (10 viewers, one seed each,
//! 10 % of datagrams dropped each way, against the same run at 0 %), and
//! GStreamer webrtcbin (libnice) as a WHEP player. ffmpeg publishes x264
//! (no B-frames, 2 s GOP) with AAC over RTMP, as OBS does.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::relay::Relay;
use common::*;
use rts_testkit::{ChildGuard, browser, node_json};

/// One browser or GStreamer test at a time (2 cores).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// x264 constrained baseline (no B-frames), 640x360 30 fps, a keyframe
/// every 2 s, AAC: what OBS sends with its defaults for "zero latency".
fn publish(url: &str) -> Option<ChildGuard> {
    let ffmpeg = rts_testkit::tool("ffmpeg")?;
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
        ])
        .args(["-profile:v", "baseline", "-g", "60", "-b:v", "800k"])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    Some(ChildGuard::spawn(&mut cmd, "ffmpeg publish").unwrap())
}

/// Viewers through a relay dropping `percent` each way; returns the
/// driver's report.
fn through_relay(
    percent: u64,
    viewers: usize,
    seconds: u32,
    seed: u64,
) -> Option<serde_json::Value> {
    let (node, dir) = browser()?;
    // The server announces the relay's address (127.0.0.2, its own port) as
    // its only candidate.
    let s = server(|c| c.webrtc.candidates = vec!["127.0.0.2".parse().unwrap()]);
    let _publisher = publish(&s.signed_rtmp("loss"))?;
    s.wait_publishing("loss");
    let rtc = s.rtc;
    let front = SocketAddr::new("127.0.0.2".parse().unwrap(), rtc.port());
    let relay = Relay::start(front, rtc, percent, seed);
    let url = s.signed_whep("loss");
    let n = viewers.to_string();
    let secs = seconds.to_string();
    let r = node_json(
        &node,
        &dir,
        "whep_loss.js",
        &[&url, &n, &secs, "400"],
        Duration::from_secs(120),
    );
    eprintln!(
        "{percent}% each way through the relay ({} clients, {} forwarded, {} dropped): {r}",
        relay
            .counts
            .clients
            .load(std::sync::atomic::Ordering::Relaxed),
        relay
            .counts
            .forwarded
            .load(std::sync::atomic::Ordering::Relaxed),
        relay
            .counts
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    Some(r)
}

/// Ten consecutive Chromium viewers, each on its own loss pattern (seed),
/// at 10 % each way: every one connects and plays, and together they
/// decode at least 98 % of the frames sent in their windows (each at least
/// 93 %). The same at 0 % for comparison. Freezes are reported
/// (docs/PERFORMANCE.md), not asserted.
#[test]
fn chromium_viewers_play_through_ten_percent_loss() {
    let _serial = serial();
    let Some(clean) = through_relay(0, 3, 6, 1) else {
        return;
    };
    let Some(lossy) = through_relay(10, 10, 12, 1000) else {
        return;
    };
    for (r, what) in [(&clean, "0%"), (&lossy, "10%")] {
        let viewers = r["viewers"].as_array().expect("viewers");
        let (mut frames, mut expected) = (0.0, 0.0);
        for v in viewers {
            let (Some(fps), Some(window)) = (v["fps"].as_f64(), v["windowS"].as_f64()) else {
                panic!("{what}: viewer {} did not play: {v}", v["i"]);
            };
            // Each viewer: a generous bound (one viewer's window can hold
            // a long freeze); all of them together: 98 % of what was sent.
            assert!(
                fps >= 0.93 * 30.0,
                "{what}: viewer {} decoded {fps} fps of 30 sent: {v}",
                v["i"]
            );
            frames += fps * window;
            expected += 30.0 * window;
        }
        assert!(
            frames >= 0.98 * expected,
            "{what}: {frames:.0} frames decoded of {expected:.0} sent, across the viewers"
        );
    }
}

/// GStreamer webrtcbin (Debian 12, libnice) plays WHEP: ICE, DTLS, H.264
/// decoded by avdec_h264, Opus packets received.
#[test]
fn gstreamer_webrtcbin_plays_whep() {
    let _serial = serial();
    let Some(python) = gst_python(&["webrtcbin", "nicesrc", "avdec_h264", "rtph264depay"]) else {
        return;
    };
    let s = server(|_| {});
    let Some(_publisher) = publish(&s.signed_rtmp("gst")) else {
        return;
    };
    s.wait_publishing("gst");
    let script = rts_testkit::workspace_root().join("tests/gstreamer/whep_play.py");
    let out = rts_testkit::run(
        Command::new(&python)
            .arg(script)
            .args([&s.signed_whep("gst"), "4"]),
        "webrtcbin",
        Duration::from_secs(60),
    )
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "webrtcbin printed no JSON: {}",
                rts_testkit::tail(&out.stderr, 3000)
            )
        });
    let r: serde_json::Value = serde_json::from_str(line).unwrap();
    eprintln!("webrtcbin: {r}");
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        r["framesDecoded"].as_u64().unwrap_or(0) >= 60,
        "at least 2 s of video decoded in 4 s: {r}"
    );
    assert!(
        r["audioRtpPackets"].as_u64().unwrap_or(0) >= 50,
        "Opus arrived: {r}"
    );
    assert!(r["connectedMs"].as_u64().unwrap_or(u64::MAX) < 5000, "{r}");
    assert_eq!(r["deleteStatus"], 200, "{r}");
}

/// coturn, started here on loopback: Chromium with
/// `iceTransportPolicy: "relay"` (as behind a firewall that only lets it
/// reach a TURN server) plays WHEP through a TURN allocation.
#[test]
fn chromium_plays_through_coturn_relay_only() {
    let _serial = serial();
    let Some(turnserver) = rts_testkit::tool("turnserver") else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let port = rts_testkit::free_udp_port();
    let mut cmd = Command::new(turnserver);
    cmd.args([
        "-n",
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "--log-file",
        "stdout",
    ])
    .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
    .args(["--listening-port", &port.to_string()])
    .args(["--min-port", "40000", "--max-port", "40999"])
    // Our server is on loopback too; coturn refuses loopback peers
    // unless told.
    .arg("--allow-loopback-peers")
    .args([
        "--lt-cred-mech",
        "--realm",
        "rts",
        "--user",
        "viewer:turn-secret",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut turn = ChildGuard::spawn(&mut cmd, "turnserver").unwrap();
    turn.wait_for_line(
        |l| l.contains("Total General servers"),
        Duration::from_secs(10),
    )
    .expect("coturn listens");
    let s = server(|_| {});
    let Some(_publisher) = publish(&s.signed_rtmp("turn")) else {
        return;
    };
    s.wait_publishing("turn");
    let config = serde_json::json!({
        "iceServers": [{
            "urls": format!("turn:127.0.0.1:{port}?transport=udp"),
            "username": "viewer",
            "credential": "turn-secret",
        }],
        "iceTransportPolicy": "relay",
    })
    .to_string();
    let r = node_json(
        &node,
        &dir,
        "whep_play.js",
        &[&s.signed_whep("turn"), "3", &config],
        Duration::from_secs(60),
    );
    eprintln!("through coturn: {r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["selectedPair"]["local"]["type"], "relay", "{r}");
    assert!(
        r["video"]["framesDecoded"].as_u64().unwrap_or(0) >= 60,
        "{r}"
    );
    assert!(
        r["audio"]["totalSamplesReceived"].as_u64().unwrap_or(0) > 48_000,
        "{r}"
    );
}

/// ICE-TCP (RFC 6544): with `[webrtc] ice_udp = false` the answer offers
/// only passive TCP candidates, as a network that drops UDP leaves; Chromium
/// connects over TCP (RFC 4571 framing) and plays.
#[test]
fn chromium_plays_over_ice_tcp() {
    let _serial = serial();
    let Some((node, dir)) = browser() else { return };
    let s = server(|c| {
        c.webrtc.ice_udp = false;
        c.webrtc.ice_tcp = true;
    });
    let Some(_publisher) = publish(&s.signed_rtmp("tcp")) else {
        return;
    };
    s.wait_publishing("tcp");
    let r = node_json(
        &node,
        &dir,
        "whep_play.js",
        &[&s.signed_whep("tcp"), "3"],
        Duration::from_secs(60),
    );
    eprintln!("over ICE-TCP: {r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["selectedPair"]["remote"]["protocol"], "tcp", "{r}");
    assert!(
        r["video"]["framesDecoded"].as_u64().unwrap_or(0) >= 60,
        "{r}"
    );
    assert!(
        r["audio"]["totalSamplesReceived"].as_u64().unwrap_or(0) > 48_000,
        "{r}"
    );
}
