//! ARTC playback through rts-server with real peers: ffmpeg publishes RTMP
//! (the fixtures with `-c copy`, and x264 with its default B-frames), headless
//! Chromium plays the WHEP URL through the conversion branch (B-frame
//! stripper, AAC to Opus, packetized once), one branch serves ten viewers,
//! and WHEP is signed like every play URL.
//!
//! The server runs in-process on 127.0.0.1 (port 0 for RTMP, HTTP and UDP).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use rts_testkit::ChildGuard;
use rts_testkit::{browser, node_json};

/// One browser test at a time: decode ratios and first-frame times mean
/// little while several Chromium instances starve each other on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seconds each play is measured after its first frame.
const WINDOW: u32 = 4;

fn publish_file(ffmpeg: &Path, input: &Path, url: &str) -> ChildGuard {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(input)
        .args(["-c", "copy", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    ChildGuard::spawn(&mut cmd, "ffmpeg publish").unwrap()
}

/// x264 with its default settings (B-frames, b-pyramid) and `gop` frames
/// between keyframes, AAC audio.
fn publish_x264(ffmpeg: &Path, url: &str, gop: u32) -> ChildGuard {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-c:v", "libx264", "-g", &gop.to_string()])
        .args(["-keyint_min", &gop.to_string(), "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    ChildGuard::spawn(&mut cmd, "ffmpeg x264 publish").unwrap()
}

/// Publishes x264 defaults with a 10 s GOP (`publish_x264`) to `name` and
/// waits until the server has seen its B-frames and `secs` of it.
fn publish_long_gop(ffmpeg: &Path, srv: &TestServer, name: &str, secs: f64) -> ChildGuard {
    let publisher = publish_x264(ffmpeg, &srv.signed_rtmp(name), 300);
    srv.wait_publishing(name);
    wait_for(&format!("{secs} s of stream"), || {
        srv.stream(name)
            .is_some_and(|s| s["b_frames"] == true && s["uptime_s"].as_f64().unwrap_or(0.0) >= secs)
    });
    publisher
}

fn play(node: &Path, dir: &Path, url: &str) -> serde_json::Value {
    node_json(
        node,
        dir,
        "whep_play.js",
        &[url, &WINDOW.to_string()],
        Duration::from_secs(90),
    )
}

/// Plays `url`; a first frame later than `first_ms` is retried twice (a
/// wall-clock figure on a machine shared with builds).
fn play_checked(node: &Path, dir: &Path, url: &str, first_ms: f64) -> serde_json::Value {
    let mut r = play(node, dir, url);
    eprintln!("whep_play: {r}");
    for attempt in 1..=2 {
        if r["firstFrameMs"].as_f64().is_some_and(|t| t <= first_ms) {
            break;
        }
        r = play(node, dir, url);
        eprintln!("whep_play (retry {attempt}): {r}");
    }
    r
}

fn assert_played(r: &serde_json::Value, what: &str, fps: f64, first_ms: f64) {
    assert_eq!(r["ok"], true, "{what}: no video decoded: {r}");
    let v = &r["video"];
    assert_eq!(v["codec"], "video/H264", "{what}");
    let decoded = v["framesDecoded"].as_f64().unwrap_or(0.0);
    // Frames still in the jitter buffer when the stats are read were
    // received but cannot have been decoded yet: compare with the frames the
    // jitter buffer handed to the decoder (a new viewer starting from the
    // cached GOP holds a few more there than a steady one).
    let received = v["jitterBufferEmittedCount"]
        .as_f64()
        .or(v["framesReceived"].as_f64())
        .unwrap_or(0.0);
    let published = fps * f64::from(WINDOW);
    assert!(
        decoded >= 0.8 * published,
        "{what}: {decoded} frames decoded, {published} published in the window"
    );
    assert!(
        decoded / received >= 0.98,
        "{what}: decoded/received {decoded}/{received}"
    );
    let a = &r["audio"];
    assert_eq!(a["codec"], "audio/opus", "{what}");
    assert!(
        a["totalSamplesReceived"].as_f64().unwrap_or(0.0) > 48_000.0,
        "{what}: no Opus decoded: {a}"
    );
    let ttff = r["firstFrameMs"].as_f64().unwrap_or(f64::MAX);
    assert!(
        ttff <= first_ms,
        "{what}: first frame {ttff} ms after the POST"
    );
    assert_eq!(r["deleteStatus"], 200, "{what}: DELETE of the session");
}

/// Every fixture, published with `-c copy`, plays in Chromium; the branch
/// transcodes exactly the ones with B-frames and always turns AAC into Opus.
#[test]
fn chromium_plays_every_fixture_over_whep() {
    let (Some(ffmpeg), Some(files)) = (rts_testkit::tool("ffmpeg"), rts_testkit::media_fixtures())
    else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let srv = server(|_| {});
    for (i, file) in files.iter().enumerate() {
        let name = format!("fixture{i}");
        let what = file.file_name().unwrap().to_string_lossy().to_string();
        let _publisher = publish_file(&ffmpeg, file, &srv.signed_rtmp(&name));
        srv.wait_publishing(&name);
        // The B-frame flag comes from the first B-frame: give the stream a
        // moment past its first GOP's start.
        wait_for("video frames", || {
            srv.stream(&name)
                .is_some_and(|s| s["frame_rate"].as_f64().is_some())
        });
        let r = play_checked(&node, &dir, &srv.signed_whep(&name), 1000.0);
        assert_played(&r, &what, 30.0, 1000.0);
        let info = srv.stream(&name).unwrap();
        let conv = &info["conversion"];
        let has_b = what.contains("bframes") || what.contains("bpyramid");
        assert_eq!(
            conv["video"],
            if has_b { "transcode" } else { "passthrough" },
            "{what}: {conv}"
        );
        assert_eq!(conv["audio"], "aac-to-opus", "{what}: {conv}");
        let audio_s = conv["audio_transcode_seconds"].as_f64().unwrap_or(0.0);
        assert!(audio_s >= 1.0, "{what}: audio metered {audio_s} s");
        let video_s: f64 = conv["video_transcode_seconds"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v.as_f64()).sum())
            .unwrap_or(0.0);
        assert_eq!(video_s > 0.0, has_b, "{what}: video metered {conv}");
        if has_b {
            let tier = if what.starts_with("high") { "HD" } else { "SD" };
            assert!(
                conv["video_transcode_seconds"][tier].as_f64().is_some(),
                "{what}: tier {tier}: {conv}"
            );
        }
        // The last viewer left: the branch stops.
        wait_for("the branch to stop", || {
            srv.stream(&name)
                .is_some_and(|s| s["conversion"]["running"] == false && s["viewers"]["webrtc"] == 0)
        });
    }
}

/// x264 defaults (B-frames) with 10 s between keyframes: a viewer joining
/// mid-GOP still sees its first frame within a second, because the
/// transcoder makes an IDR for it instead of waiting for the publisher's.
#[test]
fn long_gop_with_b_frames_starts_within_a_second() {
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let srv = server(|_| {});
    // Join well inside the first 10-second GOP.
    let _publisher = publish_long_gop(&ffmpeg, &srv, "gop", 3.0);
    let r = play_checked(&node, &dir, &srv.signed_whep("gop"), 1000.0);
    assert_played(&r, "x264 -g 300", 30.0, 1000.0);
    assert_eq!(
        srv.stream("gop").unwrap()["conversion"]["video"],
        "transcode"
    );
}

/// A viewer who comes back to a 10 s GOP with B-frames after the last one
/// left: the branch stayed warm (`transcode_linger_s`, decoding only), so
/// the new viewer's first picture is an IDR of the live edge made at once,
/// not the end of a decode of the cached GOP.
#[test]
fn a_returning_viewer_of_a_long_gop_gets_the_warm_branch() {
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let srv = server(|_| {});
    let _publisher = publish_long_gop(&ffmpeg, &srv, "warm", 2.0);
    // Cold: the branch decodes the cached GOP first (the figure is in
    // docs/decisions/transcode-linger.md); only that it plays is checked.
    let first = play(&node, &dir, &srv.signed_whep("warm"));
    assert_played(&first, "first viewer", 30.0, 10_000.0);
    wait_for("the branch to stay warm", || {
        srv.stream("warm")
            .is_some_and(|s| s["conversion"]["warm"] == true && s["conversion"]["running"] == false)
    });
    let resumes = |srv: &TestServer| {
        srv.stream("warm").unwrap()["conversion"]["resumes"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(resumes(&srv), 0, "a cold start is not a resume");
    let again = play_checked(&node, &dir, &srv.signed_whep("warm"), 1000.0);
    assert_played(&again, "returning viewer", 30.0, 1000.0);
    assert!(
        resumes(&srv) >= 1,
        "the returning viewer took the warm branch"
    );
    eprintln!(
        "first frame: first viewer {} ms, returning viewer {} ms",
        first["firstFrameMs"], again["firstFrameMs"]
    );
}

/// `transcode_warm_on_publish`: the server decodes a B-frame stream from its
/// publish on, so even the first viewer, joining 5 s into a 10 s GOP, takes
/// a warm branch instead of waiting for the GOP to be decoded.
#[test]
fn the_first_viewer_gets_a_branch_warm_from_the_publish() {
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let srv = server(|c| c.webrtc.transcode_warm_on_publish = true);
    let _publisher = publish_long_gop(&ffmpeg, &srv, "hot", 5.0);
    wait_for("a warm branch", || {
        srv.stream("hot")
            .is_some_and(|s| s["conversion"]["warm"] == true)
    });
    let r = play_checked(&node, &dir, &srv.signed_whep("hot"), 1000.0);
    assert_played(&r, "first viewer of a warm stream", 30.0, 1000.0);
    let c = srv.stream("hot").unwrap()["conversion"].clone();
    assert_eq!(
        c["resumes"], 1,
        "the first viewer took the warm branch: {c}"
    );
    eprintln!("first frame from the warm branch: {} ms", r["firstFrameMs"]);
}

/// `whep_many.js`: N viewers in one Chromium page, driven over stdin.
struct Viewers {
    driver: ChildGuard,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Viewers {
    /// Starts `n` viewers of `url`; returns them and how many decoded video.
    fn start(node: &Path, dir: &Path, url: &str, n: usize) -> (Viewers, usize) {
        let mut driver = ChildGuard::spawn_with_stdin(
            Command::new(node)
                .arg(dir.join("whep_many.js"))
                .args([url, &n.to_string()])
                .current_dir(dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
            "whep_many.js",
        )
        .unwrap();
        let stdout = driver.child().unwrap().stdout.take().unwrap();
        let mut v = Viewers {
            driver,
            lines: BufReader::new(stdout).lines(),
        };
        let ready = v.json();
        eprintln!("whep_many: {ready}");
        let n = ready["ready"].as_u64().unwrap_or(0) as usize;
        (v, n)
    }

    fn json(&mut self) -> serde_json::Value {
        let line = self
            .lines
            .find_map(|l| l.ok().filter(|l| l.starts_with('{')))
            .expect("driver output");
        serde_json::from_str(&line).unwrap()
    }

    fn send(&mut self, line: &str) {
        writeln!(
            self.driver.child().unwrap().stdin.as_mut().unwrap(),
            "{line}"
        )
        .unwrap();
    }

    /// Each viewer's figures now.
    fn stats(&mut self) -> Vec<serde_json::Value> {
        self.send("stats");
        self.json()["viewers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// DELETEs the sessions; the driver's final JSON.
    fn stop(mut self) -> serde_json::Value {
        self.send("stop");
        self.json()
    }
}

/// Ten viewers in Chromium share one conversion branch, which stops after
/// they leave. Each gets RTCP sender reports for audio and video (the one
/// clock lip sync needs).
#[test]
fn ten_viewers_share_one_branch() {
    let (Some(ffmpeg), Some(file)) = (
        rts_testkit::tool("ffmpeg"),
        rts_testkit::fixture("media/main_bframes_nonref_aaclc48k.flv"),
    ) else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let srv = server(|_| {});
    let _publisher = publish_file(&ffmpeg, &file, &srv.signed_rtmp("ten"));
    srv.wait_publishing("ten");
    let (mut viewers, ready) = Viewers::start(&node, &dir, &srv.signed_whep("ten"), 10);
    assert_eq!(ready, 10, "viewers that decoded video");
    let info = srv.stream("ten").unwrap();
    let conv = &info["conversion"];
    assert_eq!(info["viewers"]["webrtc"], 10, "{info}");
    assert_eq!(conv["running"], true, "{conv}");
    assert_eq!(conv["starts"], 1, "one branch for ten viewers: {conv}");
    let metrics = srv.metrics();
    assert!(metrics.contains("rts_conversion_branches 1"), "{metrics}");
    // Sender reports arrive every few seconds: wait for them (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let reports = |v: &serde_json::Value| {
        v["senderReports"]["video"].as_u64().unwrap_or(0) > 0
            && v["senderReports"]["audio"].as_u64().unwrap_or(0) > 0
    };
    let mut stats = viewers.stats();
    while !stats.iter().all(reports) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        stats = viewers.stats();
    }
    assert!(stats.iter().all(reports), "RTCP sender reports: {stats:?}");

    let r = viewers.stop();
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        r["deleteStatus"]
            .as_array()
            .is_some_and(|a| a.len() == 10 && a.iter().all(|c| c == 200)),
        "{r}"
    );
    wait_for("the branch to stop", || {
        srv.stream("ten")
            .is_some_and(|s| s["conversion"]["running"] == false && s["viewers"]["webrtc"] == 0)
    });
    assert_eq!(srv.stream("ten").unwrap()["conversion"]["starts"], 1);
}

/// A publisher that reconnects within the grace period: the WebRTC viewer
/// keeps its session (no renegotiation) and its video resumes.
#[test]
fn webrtc_viewer_survives_a_publisher_reconnect() {
    let (Some(ffmpeg), Some(file)) = (
        rts_testkit::tool("ffmpeg"),
        rts_testkit::fixture("media/high_bpyramid_aaclc44k.flv"),
    ) else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let srv = server(|c| c.limits.publisher_grace_ms = 10_000);
    let publisher = publish_file(&ffmpeg, &file, &srv.signed_rtmp("again"));
    srv.wait_publishing("again");
    let (mut viewers, ready) = Viewers::start(&node, &dir, &srv.signed_whep("again"), 1);
    assert_eq!(ready, 1);
    drop(publisher);
    wait_for("the publisher to leave", || {
        srv.stream("again")
            .is_some_and(|s| s["publishing"] == false)
    });
    let before = viewers.stats()[0]["framesDecoded"].as_u64().unwrap_or(0);
    let _publisher = publish_file(&ffmpeg, &file, &srv.signed_rtmp("again"));
    srv.wait_publishing("again");
    // Two seconds of frames after the return, on the same session.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut now = viewers.stats();
    while now[0]["framesDecoded"].as_u64().unwrap_or(0) < before + 60
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(250));
        now = viewers.stats();
    }
    let after = now[0]["framesDecoded"].as_u64().unwrap_or(0);
    assert!(
        after >= before + 60,
        "{before} frames before, {after} after: {now:?}"
    );
    assert_eq!(now[0]["state"], "connected");
    let conv = &srv.stream("again").unwrap()["conversion"];
    assert_eq!(conv["starts"], 1, "the same branch went on: {conv}");
    assert_eq!(viewers.stop()["ok"], true);
}

/// The server's own web player plays the stream (figures shown, Opus
/// audio), explains a refused URL with the server's reason, and the
/// calibrator page is served.
#[test]
fn the_web_player_plays_and_explains_refusals() {
    let (Some(ffmpeg), Some(file)) = (
        rts_testkit::tool("ffmpeg"),
        rts_testkit::fixture("media/baseline_aaclc44k.flv"),
    ) else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let srv = server(|_| {});
    let _publisher = publish_file(&ffmpeg, &file, &srv.signed_rtmp("page"));
    srv.wait_publishing("page");
    let key = sign("/live/page", now(), PLAY_KEY);
    let page = format!("http://{}/play/live/page?auth_key={key}", srv.http);
    let r = node_json(
        &node,
        &dir,
        "player_page.js",
        &[&page, "--frames", "60", "--timeout", "20"],
        Duration::from_secs(90),
    );
    eprintln!("player_page: {r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["state"], "playing", "{r}");
    assert!(r["framesDecoded"].as_u64().unwrap_or(0) >= 60, "{r}");
    assert_eq!(r["width"], 640, "{r}");
    assert!(
        r["audioCodec"].as_str().is_some_and(|c| c.contains("opus")),
        "{r}"
    );
    assert_eq!(r["deleteStatus"], 200, "{r}");

    // The artc:// form of the same URL plays too.
    let artc = format!(
        "http://{}/play?url=artc://127.0.0.1/live/page%3Fauth_key%3D{key}",
        srv.http
    );
    let r = node_json(
        &node,
        &dir,
        "player_page.js",
        &[&artc],
        Duration::from_secs(90),
    );
    assert_eq!(r["ok"], true, "artc:// URL: {r}");

    let wrong = sign("/live/other", now(), PLAY_KEY);
    let bad = format!("http://{}/play/live/page?auth_key={wrong}", srv.http);
    let r = node_json(
        &node,
        &dir,
        "player_page.js",
        &[
            &bad,
            "--expect-error",
            "403",
            "--expect-text",
            "invalid md5hash",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(r["ok"], true, "403 reason shown: {r}");

    let (status, body) = http_get(srv.http, "/calibrator", &[]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("id=\"clock\""));
}

/// H.264 without B-frames and Opus over Enhanced RTMP (FFmpeg 8+ writes
/// Opus in FLV): the branch converts nothing and meters nothing, and
/// Chromium decodes the Opus as published.
#[test]
fn opus_over_enhanced_rtmp_is_not_converted() {
    let Some(ffmpeg) = rts_testkit::modern_ffmpeg() else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let srv = server(|_| {});
    let mut cmd = Command::new(&ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-c:v", "libx264", "-bf", "0", "-g", "60"])
        .args(["-c:a", "libopus", "-b:a", "64k", "-ar", "48000"])
        .args(["-f", "flv", &srv.signed_rtmp("opus")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let _publisher = ChildGuard::spawn(&mut cmd, "ffmpeg opus publish").unwrap();
    srv.wait_publishing("opus");
    wait_for("Opus audio", || {
        srv.stream("opus")
            .is_some_and(|s| s["audio_codec"] == "opus")
    });
    let r = play_checked(&node, &dir, &srv.signed_whep("opus"), 1000.0);
    assert_played(&r, "H.264 without B-frames + Opus", 30.0, 1000.0);
    let conv = &srv.stream("opus").unwrap()["conversion"];
    assert_eq!(conv["video"], "passthrough", "{conv}");
    assert_eq!(conv["audio"], "passthrough", "{conv}");
    assert_eq!(conv["audio_transcode_seconds"], 0.0, "{conv}");
    assert!(
        conv["video_transcode_seconds"]
            .as_object()
            .is_some_and(|m| m.is_empty()),
        "{conv}"
    );
}

/// rts-probe (rts-webrtc's client) plays an x264 stream with B-frames:
/// none reaches a WebRTC viewer through the conversion branch; a viewer
/// that asks for `?passthrough=1` gets them as published (so does FLV), and
/// that branch converts nothing. Our client on this end: it classifies every
/// access unit it receives, which a browser's stats cannot show.
#[test]
fn no_b_frame_reaches_webrtc_unless_passthrough_is_asked() {
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let srv = server(|_| {});
    let _publisher = publish_x264(&ffmpeg, &srv.signed_rtmp("bf"), 60);
    srv.wait_publishing("bf");
    wait_for("B-frames", || {
        srv.stream("bf").is_some_and(|s| s["b_frames"] == true)
    });
    let probe = |url: &str| -> serde_json::Value {
        let out = rts_testkit::run(
            Command::new(rts_testkit::example_bin("rts-probe")).args([
                "--play",
                url,
                "--duration",
                "3",
            ]),
            "rts-probe",
            Duration::from_secs(60),
        )
        .expect("rts-probe ends");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.trim()).unwrap()
    };
    let converted = probe(&srv.signed_whep("bf"));
    eprintln!("whep: {converted}");
    assert!(
        converted["frames_received"].as_u64().unwrap_or(0) >= 45,
        "{converted}"
    );
    assert_eq!(converted["b_frames"], 0, "{converted}");

    let native = probe(&format!("{}&passthrough=1", srv.signed_whep("bf")));
    eprintln!("whep passthrough: {native}");
    let frames = native["frames_received"].as_u64().unwrap_or(0);
    let b = native["b_frames"].as_u64().unwrap_or(0);
    assert!(frames >= 45, "{native}");
    assert!(
        b * 3 >= frames,
        "x264 defaults: most frames are B: {native}"
    );

    let flv = probe(&srv.signed_flv("bf"));
    assert!(flv["b_frames"].as_u64().unwrap_or(0) > 0, "{flv}");
    // The passthrough branch ran beside the converting one without being
    // counted as a conversion.
    let conv = &srv.stream("bf").unwrap()["conversion"];
    assert_eq!(conv["starts"], 1, "{conv}");
}

/// A minimal offer: what rts-webrtc needs to answer (H.264 and Opus).
const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\na=rtpmap:96 H264/90000\r\n\
a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

/// WHEP is signed like every play URL: the reasons come back in 403s, a
/// Bearer token works as the auth_key, an unknown stream is 404.
#[test]
fn whep_is_signed_like_every_play_url() {
    let (Some(ffmpeg), Some(file)) = (
        rts_testkit::tool("ffmpeg"),
        rts_testkit::fixture("media/baseline_aaclc44k.flv"),
    ) else {
        return;
    };
    let srv = server(|_| {});
    let _publisher = publish_file(&ffmpeg, &file, &srv.signed_rtmp("auth"));
    srv.wait_publishing("auth");
    let post = |path: &str, headers: &[(&str, &str)]| {
        let mut h = vec![("Content-Type", "application/sdp")];
        h.extend_from_slice(headers);
        let (status, body) = http_request(srv.http, "POST", path, &h, OFFER.as_bytes());
        (status, String::from_utf8_lossy(&body).to_string())
    };
    let (status, body) = post("/live/auth/whep", &[]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("auth_key"), "{body}");

    let wrong = sign("/live/other", now(), PLAY_KEY);
    let (status, body) = post(&format!("/live/auth/whep?auth_key={wrong}"), &[]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("invalid md5hash"), "{body}");

    let expired = sign("/live/auth", now() - 3 * 86_400, PLAY_KEY);
    let (status, body) = post(&format!("/live/auth/whep?auth_key={expired}"), &[]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("expired"), "{body}");

    // The FLV uri's signature is not the ARTC one.
    let flv = sign("/live/auth.flv", now(), PLAY_KEY);
    let (status, _) = post(&format!("/live/auth/whep?auth_key={flv}"), &[]);
    assert_eq!(status, 403);

    let good = sign("/live/auth", now(), PLAY_KEY);
    let (status, body) = post(
        "/live/auth/whep",
        &[("Authorization", &format!("Bearer {good}"))],
    );
    assert_eq!(status, 201, "Bearer auth_key: {body}");
    assert!(body.contains("a=setup:passive"), "{body}");

    let secondary = sign("/live/auth", now(), PLAY_KEY2);
    let (status, body) = post(&format!("/live/auth/whep?auth_key={secondary}"), &[]);
    assert_eq!(status, 201, "secondary key: {body}");

    let missing = sign("/live/nothing", now(), PLAY_KEY);
    let (status, body) = post(&format!("/live/nothing/whep?auth_key={missing}"), &[]);
    assert_eq!(status, 404, "{body}");

    let (status, body) = http_request(
        srv.http,
        "POST",
        &format!("/live/auth/whep?auth_key={good}"),
        &[("Content-Type", "text/plain")],
        OFFER.as_bytes(),
    );
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&body));

    let audio_only = OFFER
        .replace("m=video", "m=audio")
        .replace("H264/90000", "PCMU/8000");
    let (status, body) = http_request(
        srv.http,
        "POST",
        &format!("/live/auth/whep?auth_key={good}"),
        &[("Content-Type", "application/sdp")],
        audio_only.as_bytes(),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}
