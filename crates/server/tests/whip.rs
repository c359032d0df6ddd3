//! WHIP ingest (RFC 9725) into rts-server with publishers we did not write:
//! FFmpeg 9 (`-f whip`, x264 High without B-frames and Opus, as OBS sends),
//! headless Chromium (its fake camera and microphone), GStreamer webrtcbin
//! and the publish page. Each stream is played back by Chromium over WHEP
//! (H.264 frames and Opus decoded) and read by Debian's ffprobe 5.1 over
//! HTTP-FLV: H.264 and AAC, converted on demand from the Opus (ffprobe 5.1
//! knows no Opus in FLV), frames decoded and counted. FFmpeg 9 asks for
//! the Opus as published. The endpoint's refusals (signature, a second
//! publisher, codecs), PATCH (trickle, ICE restart) and DELETE are checked
//! with offers made by rts-webrtc and with Chromium.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use rts_testkit::{ChildGuard, browser, node_json};
use rts_webrtc::{Certificate, Config, Peer, Role};

/// One browser test at a time (2 cores).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seconds each WHEP play is measured.
const WINDOW: u32 = 4;

/// A publisher's offer (H.264 and Opus, sendrecv as browsers offer it),
/// made by rts-webrtc's client side.
fn client_offer() -> String {
    let local = "127.0.0.1:9".parse().unwrap();
    let config = Config {
        local_addr: local,
        candidates: vec![local],
        certificate: Certificate::generate().unwrap(),
        ice_ufrag: "whiptestufrag".into(),
        ice_pwd: "whip-test-password-0123456789".into(),
        video_ssrc: 11,
        audio_ssrc: 12,
        idle_timeout: Duration::from_secs(10),
        stats_interval: Duration::from_secs(1),
        tcp_candidates: Vec::new(),
    };
    Peer::offer(Instant::now(), Role::Viewer, &config)
        .unwrap()
        .1
}

fn post_offer(s: &TestServer, path: &str, headers: &[(&str, &str)], sdp: &str) -> (u16, String) {
    let mut h = vec![("Content-Type", "application/sdp")];
    h.extend_from_slice(headers);
    let (status, body) = http_request(s.http, "POST", path, &h, sdp.as_bytes());
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The `Location` of a 201: POST again with the raw response kept.
fn post_for_location(s: &TestServer, path: &str, bearer: &str, sdp: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(s.http).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/sdp\r\nAuthorization: Bearer {bearer}\r\nContent-Length: {}\r\n\r\n{sdp}",
        s.http,
        sdp.len()
    )
    .unwrap();
    let mut raw = String::new();
    let _ = c.read_to_string(&mut raw);
    assert!(raw.starts_with("HTTP/1.1 201"), "{raw}");
    raw.lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .expect("a Location header")
        .trim()
        .to_owned()
}

/// Signature, Bearer token, one publisher per stream, codecs, trickle
/// PATCH, DELETE.
#[test]
fn whip_endpoint_checks_the_key_refuses_a_second_publisher_and_ends_on_delete() {
    let s = server(|_| {});
    let offer = client_offer();
    let (url, key) = s.whip("w");
    let path = url
        .trim_start_matches(&format!("http://{}", s.http))
        .to_owned();

    // No key, a wrong key, a play key: 403 with the reason.
    let (status, body) = post_offer(&s, &path, &[], &offer);
    assert_eq!(status, 403, "{body}");
    let wrong = sign("/live/w", now(), PLAY_KEY);
    let (status, body) = post_offer(&s, &format!("{path}?auth_key={wrong}"), &[], &offer);
    assert_eq!(status, 403, "a play key does not publish: {body}");

    // The key as OBS sends it: a Bearer token.
    let location = post_for_location(&s, &path, &key, &offer);
    assert!(location.starts_with("/live/w/whip/"), "{location}");
    wait_for("the WHIP stream in the API", || {
        s.stream("w").is_some_and(|v| v["publishing"] == true)
    });

    // A second publisher of the same stream: 409, and the first keeps it.
    let (status, body) = post_offer(&s, &format!("{path}?auth_key={key}"), &[], &offer);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already publishing"), "{body}");

    // VP8 only: refused with the codecs we take.
    let vp8 = offer
        .lines()
        .map(|l| {
            if l.starts_with("a=rtpmap:") && l.contains("H264") {
                l.replace("H264", "VP8")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    let (url2, key2) = s.whip("vp8");
    let path2 = url2.trim_start_matches(&format!("http://{}", s.http));
    let (status, body) = post_offer(&s, &format!("{path2}?auth_key={key2}"), &[], &vp8);
    // The audio is still usable; without H.264 there is no video track.
    assert!(status == 201 || status == 400, "{status} {body}");
    let no_opus = vp8.replace("opus/48000/2", "PCMU/8000");
    let (url3, key3) = s.whip("none");
    let path3 = url3.trim_start_matches(&format!("http://{}", s.http));
    let (status, body) = post_offer(&s, &format!("{path3}?auth_key={key3}"), &[], &no_opus);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("H.264"), "says what is taken: {body}");

    // A trickled candidate (RFC 8840): accepted with 204 (the server is
    // ICE-lite: the client's checks find it). An ICE restart whose password
    // is not made of ice-chars: a 400 that says why. Without the right
    // content type: a 415 that names it.
    let bearer = format!("Bearer {key}");
    let patch = |content_type: &str, if_match: Option<&str>, frag: &str| {
        let mut h = vec![("Content-Type", content_type), ("Authorization", &*bearer)];
        h.extend(if_match.map(|m| ("If-Match", m)));
        let (status, body) = http_request(s.http, "PATCH", &location, &h, frag.as_bytes());
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let trickle = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n";
    let (status, body) = patch("application/trickle-ice-sdpfrag", None, trickle);
    assert_eq!(status, 204, "{body}");
    let bad = "a=ice-ufrag:newufrag\r\na=ice-pwd:not-ice-chars-but-long-enough\r\n";
    let (status, body) = patch("application/trickle-ice-sdpfrag", Some("*"), bad);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("ICE restart refused") && body.contains("8839"),
        "{body}"
    );
    let (status, body) = patch("application/sdp", None, trickle);
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("trickle-ice-sdpfrag"), "{body}");

    // DELETE ends the session and the publish (no grace period here).
    let (status, _) = http_request(
        s.http,
        "DELETE",
        &location,
        &[("Authorization", &format!("Bearer {key}"))],
        b"",
    );
    assert_eq!(status, 200);
    wait_for("the stream to end", || {
        s.stream("w").is_none_or(|v| v["publishing"] == false)
    });
    let (status, _) = http_request(s.http, "DELETE", &location, &[], b"");
    assert_eq!(status, 404, "the resource is gone");
}

/// FFmpeg 9 publishing like OBS: x264 High, no B-frames, a keyframe every
/// 2 s, Opus, the key as a Bearer token (`-authorization`).
fn ffmpeg_whip(ffmpeg: &Path, url: &str, key: &str, size: &str) -> ChildGuard {
    ffmpeg_whip_sized(ffmpeg, url, key, size, None)
}

/// 640x360 for `secs` seconds (then FFmpeg ends the session), or until
/// dropped.
fn ffmpeg_whip_for(ffmpeg: &Path, url: &str, key: &str, secs: Option<u32>) -> ChildGuard {
    ffmpeg_whip_sized(ffmpeg, url, key, "640x360", secs)
}

fn ffmpeg_whip_sized(
    ffmpeg: &Path,
    url: &str,
    key: &str,
    size: &str,
    secs: Option<u32>,
) -> ChildGuard {
    let video = format!("testsrc2=size={size}:rate=30");
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &video])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-profile:v",
            "high",
            "-bf",
            "0",
            "-g",
            "60",
            "-b:v",
            "1500k",
        ])
        .args(["-pix_fmt", "yuv420p"])
        .args(["-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2"]);
    if let Some(t) = secs {
        cmd.args(["-t", &t.to_string()]);
    }
    cmd.args(["-authorization", key, "-f", "whip", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    ChildGuard::spawn(&mut cmd, "ffmpeg whip").unwrap()
}

/// Waits (60 s at most) for a publisher driver to end and returns the JSON
/// report it printed last.
fn report(publisher: &mut ChildGuard, what: &str) -> serde_json::Value {
    let out = publisher
        .wait_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "{what}: no report: {}",
                rts_testkit::tail(&out.stderr, 2000)
            )
        });
    serde_json::from_str(line).unwrap()
}

/// Chromium plays `url` over WHEP for [`WINDOW`] seconds.
fn whep_play(node: &Path, dir: &Path, url: &str) -> serde_json::Value {
    let r = node_json(
        node,
        dir,
        "whep_play.js",
        &[url, &WINDOW.to_string()],
        Duration::from_secs(90),
    );
    eprintln!("whep_play: {r}");
    r
}

/// At least `min_fps` decoded over the window, and Opus with little
/// concealment.
fn assert_played_back(r: &serde_json::Value, what: &str, min_fps: f64) {
    assert_eq!(r["ok"], true, "{what}: no video decoded: {r}");
    let v = &r["video"];
    assert_eq!(v["codec"], "video/H264", "{what}: {r}");
    let decoded = v["framesDecoded"].as_f64().unwrap_or(0.0);
    assert!(
        decoded >= min_fps * f64::from(WINDOW),
        "{what}: {decoded} frames decoded in {WINDOW} s: {r}"
    );
    let a = &r["audio"];
    assert_eq!(a["codec"], "audio/opus", "{what}: {r}");
    let samples = a["totalSamplesReceived"].as_f64().unwrap_or(0.0);
    let concealed = a["concealedSamples"].as_f64().unwrap_or(0.0);
    assert!(
        samples >= 48_000.0 * 2.0,
        "{what}: {samples} Opus samples in {WINDOW} s: {r}"
    );
    assert!(
        concealed <= 0.1 * samples,
        "{what}: {concealed} of {samples} samples concealed: {r}"
    );
}

/// What ffprobe found in `secs` seconds of a stream, frames decoded.
#[derive(Debug)]
struct Probed {
    video_codec: String,
    audio_codec: String,
    video: u64,
    audio: u64,
}

/// Debian's ffprobe (5.1: no Opus in FLV) reads `secs` seconds of the
/// HTTP-FLV and decodes every frame (`-count_frames`).
fn ffprobe_reads_flv(ffprobe: &Path, url: &str, secs: u32) -> Probed {
    let out = rts_testkit::run_ok(
        Command::new(ffprobe)
            .args(["-v", "error", "-read_intervals", &format!("%+{secs}")])
            .args(["-count_frames", "-show_entries"])
            .args([
                "stream=codec_type,codec_name,nb_read_frames",
                "-of",
                "json",
                url,
            ]),
        "ffprobe reading HTTP-FLV",
        Duration::from_secs(60),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut p = Probed {
        video_codec: String::new(),
        audio_codec: String::new(),
        video: 0,
        audio: 0,
    };
    for st in v["streams"].as_array().into_iter().flatten() {
        let codec = st["codec_name"].as_str().unwrap_or_default().to_owned();
        let frames = st["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        match st["codec_type"].as_str() {
            Some("video") => (p.video_codec, p.video) = (codec, frames),
            Some("audio") => (p.audio_codec, p.audio) = (codec, frames),
            _ => {}
        }
    }
    eprintln!("ffprobe read {p:?} in {secs} s of {url}");
    p
}

/// H.264 and AAC (converted from the Opus), at least `video` and `audio`
/// frames decoded.
#[track_caller]
fn assert_h264_aac(p: &Probed, video: u64, audio: u64) {
    assert_eq!((&*p.video_codec, &*p.audio_codec), ("h264", "aac"), "{p:?}");
    assert!(
        p.video >= video,
        "{} video frames, expected {video}: {p:?}",
        p.video
    );
    assert!(
        p.audio >= audio,
        "{} audio frames, expected {audio}: {p:?}",
        p.audio
    );
}

#[test]
fn ffmpeg9_publishes_whip_and_chromium_and_ffmpeg_play_it() {
    let Some(ffmpeg) = rts_testkit::modern_ffmpeg() else {
        return;
    };
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let s = server(|_| {});
    let (url, key) = s.whip("ff");
    let _publisher = ffmpeg_whip(&ffmpeg, &url, &key, "1280x720");
    s.wait_publishing("ff");
    let info = s.stream("ff").unwrap();
    assert_eq!(info["video_codec"], "h264", "{info}");
    assert_eq!(info["audio_codec"], "opus", "{info}");

    let viewer = {
        let (node, dir, url) = (node.clone(), dir.clone(), s.signed_whep("ff"));
        std::thread::spawn(move || whep_play(&node, &dir, &url))
    };
    // While Chromium plays, its RTP is the publisher's, forwarded.
    wait_for("the forwarding to start", || {
        s.stream("ff")
            .is_some_and(|v| v["conversion"]["forwarded"] == true)
    });
    let r = viewer.join().unwrap();
    assert_played_back(&r, "FFmpeg WHIP", 24.0);
    assert_eq!(r["video"]["frameWidth"], 1280, "{r}");
    let conv = &s.stream("ff").unwrap()["conversion"];
    assert_eq!(conv["starts"], 0, "no conversion branch: {conv}");
    assert_eq!(
        conv["audio_transcode_seconds"], 0.0,
        "nothing metered: {conv}"
    );

    let p = ffprobe_reads_flv(&ffprobe, &s.signed_flv("ff"), 3);
    // 1024-sample AAC frames at 48 kHz: 46.9 per second.
    assert_h264_aac(&p, 80, 125);
}

/// The codecs and packet counts of `secs` seconds of `url`, read by
/// `ffmpeg` without decoding (`-c copy`).
fn flv_codecs(ffmpeg: &Path, url: &str, secs: u32) -> (String, usize, usize) {
    let out = rts_testkit::run_ok(
        Command::new(ffmpeg)
            .args(["-hide_banner", "-v", "error", "-i", url, "-c", "copy"])
            .args(["-t", &secs.to_string(), "-f", "framecrc", "-"]),
        "ffmpeg reading",
        Duration::from_secs(60),
    )
    .unwrap();
    let codecs: Vec<_> = out
        .lines()
        .filter_map(|l| l.strip_prefix("#codec_id "))
        .collect();
    let count = |stream: &str| {
        out.lines()
            .filter(|l| !l.starts_with('#') && l.split(',').next().map(str::trim) == Some(stream))
            .count()
    };
    (codecs.join(", "), count("0"), count("1"))
}

/// The strength of `freq` in `pcm` (mono f32 at 48 kHz), relative to the
/// signal's power: 1 for a pure tone at `freq`, near 0 without it.
fn tone_share(pcm: &[f32], freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / 48_000.0;
    let (mut re, mut im, mut power) = (0.0, 0.0, 0.0);
    for (i, s) in pcm.iter().enumerate() {
        let s = f64::from(*s);
        re += s * (w * i as f64).cos();
        im += s * (w * i as f64).sin();
        power += s * s;
    }
    let n = pcm.len() as f64;
    2.0 * (re * re + im * im) / n / power.max(1e-12)
}

/// A WHIP stream carries Opus. Players that know only AAC (Debian's
/// ffmpeg 5.1 over RTMP and HTTP-FLV, as any RTMP/FLV player without
/// Enhanced FLV) get AAC converted from it, on demand: the conversion runs
/// while they play, is metered, and stops after they leave. An FLV player
/// that asks for Opus (`?audio=opus`, FFmpeg 9) gets it as published.
#[test]
fn rtmp_and_flv_players_of_a_whip_stream_get_aac_while_they_play() {
    let Some(ffmpeg9) = rts_testkit::modern_ffmpeg() else {
        return;
    };
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let _serial = serial();
    let s = server(|_| {});
    let (url, key) = s.whip("aac");
    let _publisher = ffmpeg_whip(&ffmpeg9, &url, &key, "640x360");
    s.wait_publishing("aac");
    wait_for("Opus to arrive", || {
        s.stream("aac").is_some_and(|v| v["audio_codec"] == "opus")
    });
    let flv = s.signed_flv("aac");
    let (codecs, video, audio) = flv_codecs(&ffmpeg, &flv, 3);
    eprintln!("ffmpeg 5.1 over HTTP-FLV: {codecs}; {video} video, {audio} audio packets in 3 s");
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}"
    );
    assert!(video >= 80, "{video} video packets in 3 s");
    // 1024-sample frames at 48 kHz: 46.9 per second.
    assert!(audio >= 125, "{audio} AAC frames in 3 s");

    // The tone the publisher sends is the tone the AAC player hears.
    let out = rts_testkit::run(
        Command::new(&ffmpeg)
            .args(["-hide_banner", "-v", "error", "-i", &flv, "-vn"])
            .args(["-t", "2", "-ac", "1", "-ar", "48000", "-f", "f32le", "-"]),
        "ffmpeg decoding the AAC",
        Duration::from_secs(60),
    )
    .unwrap();
    let pcm: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .skip(4800)
        .collect();
    assert!(pcm.len() >= 48_000, "{} samples decoded", pcm.len());
    let (at_440, at_1000) = (tone_share(&pcm, 440.0), tone_share(&pcm, 1000.0));
    eprintln!("decoded AAC: 440 Hz share {at_440:.3}, 1 kHz share {at_1000:.4}");
    assert!(at_440 > 0.9 && at_1000 < 0.01, "{at_440} / {at_1000}");

    // RTMP, and the API's view while it plays.
    let k = sign("/live/aac", now(), PLAY_KEY);
    let rtmp = s.rtmp_url("live", "aac", Some(k));
    let reader = {
        let ffmpeg = ffmpeg.clone();
        std::thread::spawn(move || flv_codecs(&ffmpeg, &rtmp, 4))
    };
    wait_for("the RTMP player to be counted", || {
        s.stream("aac").is_some_and(|v| {
            v["viewers"]["rtmp"] == 1 && v["conversion"]["opus_to_aac"]["running"] == true
        })
    });
    let (codecs, video, audio) = reader.join().unwrap();
    eprintln!("ffmpeg 5.1 over RTMP: {codecs}; {video} video, {audio} audio packets in 4 s");
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}"
    );
    assert!(video >= 100 && audio >= 165, "{video} / {audio}");

    // Nobody left: it stops, and what ran was metered.
    wait_for("the conversion to stop", || {
        s.stream("aac")
            .is_some_and(|v| v["conversion"]["opus_to_aac"]["running"] == false)
    });
    let info = s.stream("aac").unwrap();
    let conv = &info["conversion"]["opus_to_aac"];
    let secs = conv["seconds"].as_f64().unwrap();
    assert!(secs >= 5.0, "{secs} s metered: {conv}");
    assert_eq!(info["viewers"]["rtmp"], 0, "{info}");
    assert!(
        s.metrics().contains("kind=\"opus-to-aac\""),
        "no opus-to-aac in /metrics"
    );

    // Opus as published for a player that asks, and nothing converted.
    let starts = conv["starts"].as_u64().unwrap();
    let (codecs, _, audio) = flv_codecs(&ffmpeg9, &format!("{flv}&audio=opus"), 2);
    assert!(codecs.contains("opus") && audio >= 80, "{codecs}, {audio}");
    let after = s.stream("aac").unwrap();
    assert_eq!(
        after["conversion"]["opus_to_aac"]["starts"], starts,
        "{after}"
    );
}

#[test]
fn chromium_publishes_whip_and_plays_it_back() {
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let s = server(|_| {});
    let (url, key) = s.whip("cr");
    let publish_s = 14;
    let mut publisher = ChildGuard::spawn(
        Command::new(&node)
            .current_dir(&dir)
            .arg("whip_publish.js")
            .args([&format!("{url}?auth_key={key}"), &publish_s.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "chromium whip publish",
    )
    .unwrap();
    s.wait_publishing("cr");
    let r = whep_play(&node, &dir, &s.signed_whep("cr"));
    // Chromium's encoder starts at a low rate and adapts its frame rate to
    // the bandwidth estimate and the CPU (two browsers on 2 cores).
    assert_played_back(&r, "Chromium WHIP", 15.0);
    let p = ffprobe_reads_flv(&ffprobe, &s.signed_flv("cr"), 2);
    // Chromium lowers its frame rate when the machine is busy.
    assert_h264_aac(&p, 30, 80);

    let p = report(&mut publisher, "whip_publish.js ends");
    eprintln!("whip_publish: {p}");
    assert_eq!(p["ok"], true, "{p}");
    assert_eq!(
        p["video"]["codec"], "video/H264",
        "H.264 was negotiated: {p}"
    );
    assert_eq!(p["deleteStatus"], 200, "{p}");
    wait_for("the stream to end after DELETE", || {
        s.stream("cr").is_none_or(|v| v["publishing"] == false)
    });
}

/// ICE restart of a WHIP session (RFC 9725 4.3): one second in, Chromium
/// restarts ICE and PATCHes its new credentials; the server answers with
/// its own, Chromium selects a new candidate pair with them, and the
/// publisher's media keeps arriving.
#[test]
fn chromium_restarts_ice_on_its_whip_session_and_the_stream_goes_on() {
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let s = server(|_| {});
    let (url, key) = s.whip("ice");
    let mut publisher = ChildGuard::spawn(
        Command::new(&node)
            .current_dir(&dir)
            .arg("whip_publish.js")
            .args([&format!("{url}?auth_key={key}"), "8", "restart-ice"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "chromium whip publish with an ICE restart",
    )
    .unwrap();
    let line = publisher
        .wait_for_line(|l| l.contains("\"restarted\""), Duration::from_secs(60))
        .expect("whip_publish.js restarted ICE");
    let restarted: serde_json::Value = serde_json::from_str(&line).unwrap();
    eprintln!("whip_publish: {restarted}");
    let r = &restarted["restarted"];
    assert_eq!(r["patchStatus"], 200, "{r}");
    assert_ne!(r["etagBefore"], r["etagAfter"], "a new ETag: {r}");
    assert_ne!(
        r["before"]["local"], r["after"]["local"],
        "Chromium's new ufrag: {r}"
    );
    assert_ne!(
        r["before"]["remote"], r["after"]["remote"],
        "the server's new ufrag: {r}"
    );
    let (before, switched) = (&restarted["before"], &restarted["switched"]);
    assert_eq!(
        switched["iceLocalUsernameFragment"], r["after"]["local"],
        "the transport runs on the new credentials: {restarted}"
    );
    assert!(
        switched["selectedCandidatePairChanges"].as_u64()
            > before["selectedCandidatePairChanges"].as_u64(),
        "a new pair was selected: {restarted}"
    );
    assert_eq!(switched["connectionState"], "connected", "{restarted}");
    // The server gets the media after the switch: 100 kB more (a second or
    // two of Chromium's video at its starting rate).
    let bytes_in = || {
        s.stream("ice")
            .map_or(0, |v| v["bytes_in"].as_u64().unwrap_or(0))
    };
    let at_switch = bytes_in();
    wait_for("media after the restart", || {
        bytes_in() > at_switch + 100_000
    });
    let out = publisher
        .wait_timeout(Duration::from_secs(60))
        .expect("whip_publish.js ends");
    assert!(
        out.status.success(),
        "whip_publish.js: {}",
        rts_testkit::tail(&out.stderr, 2000)
    );
}

/// An encoder that stops and comes back within the grace period keeps its
/// WHEP viewers: the second publish is forwarded to the same sessions,
/// its sequence numbers and timestamps continuing the first's.
#[test]
fn a_whip_publisher_back_within_the_grace_period_keeps_its_viewers() {
    let Some(ffmpeg) = rts_testkit::modern_ffmpeg() else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let s = server(|c| c.limits.publisher_grace_ms = 5000);
    let (url, key) = s.whip("again");
    // The first encoder publishes 5 s, then ends its session (DELETE).
    let mut first = ffmpeg_whip_for(&ffmpeg, &url, &key, Some(5));
    s.wait_publishing("again");
    let viewer = {
        let (node, dir, url) = (node.clone(), dir.clone(), s.signed_whep("again"));
        std::thread::spawn(move || {
            node_json(
                &node,
                &dir,
                "whep_play.js",
                &[&url, "9"],
                Duration::from_secs(90),
            )
        })
    };
    wait_for("the forwarding to start", || {
        s.stream("again")
            .is_some_and(|v| v["conversion"]["forwarded"] == true)
    });
    first
        .wait_timeout(Duration::from_secs(30))
        .expect("the first encoder ends");
    wait_for("the grace period", || {
        s.stream("again").is_some_and(|v| v["publishing"] == false)
    });
    let _second = ffmpeg_whip_for(&ffmpeg, &url, &key, None);
    s.wait_publishing("again");
    let r = viewer.join().unwrap();
    eprintln!("viewer across the republish: {r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["deleteStatus"], 200, "the viewer's session lasted: {r}");
    let decoded = r["video"]["framesDecoded"].as_f64().unwrap_or(0.0);
    // 9 s of play with a gap of the reconnection: frames of both.
    assert!(
        decoded >= 150.0,
        "{decoded} frames in 9 s across the republish: {r}"
    );
    assert!(
        r["video"]["keyFramesDecoded"].as_u64().unwrap_or(0) >= 2,
        "the second publisher's keyframe was decoded: {r}"
    );
}

/// GStreamer webrtcbin (libnice, x264enc, opusenc) publishing over WHIP;
/// Chromium plays it back over WHEP and FFmpeg 9 reads its HTTP-FLV.
#[test]
fn gstreamer_webrtcbin_publishes_whip() {
    let Some(python) = gst_python(&["webrtcbin", "nicesrc", "x264enc", "opusenc", "rtph264pay"])
    else {
        return;
    };
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let s = server(|_| {});
    let (url, key) = s.whip("gst");
    let script = rts_testkit::workspace_root().join("tests/gstreamer/whip_publish.py");
    let mut publisher = ChildGuard::spawn(
        Command::new(&python)
            .arg(script)
            .args([&format!("{url}?auth_key={key}"), "12"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "webrtcbin whip publish",
    )
    .unwrap();
    s.wait_publishing("gst");
    let r = whep_play(&node, &dir, &s.signed_whep("gst"));
    assert_played_back(&r, "GStreamer WHIP", 24.0);
    let p = ffprobe_reads_flv(&ffprobe, &s.signed_flv("gst"), 2);
    assert_h264_aac(&p, 40, 80);
    let p = report(&mut publisher, "whip_publish.py ends");
    eprintln!("webrtcbin: {p}");
    assert_eq!(p["ok"], true, "{p}");
    assert_eq!(p["deleteStatus"], 200, "{p}");
}

/// "Try RTS": the embedded publish page (`/publish/{app}/{stream}?auth_key=…`)
/// publishes Chromium's fake camera and microphone over WHIP and shows the
/// outgoing figures; its player link plays the stream in the server's own
/// player; without a valid ingest key the page is refused with the reason.
#[test]
fn the_publish_page_publishes_the_camera_and_links_a_working_player() {
    let Some((node, dir)) = browser() else { return };
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let _serial = serial();
    let s = server(|_| {});
    let (status, body) = http_get(s.http, "/publish/live/page", &[]);
    assert_eq!(status, 403, "no key");
    assert!(String::from_utf8_lossy(&body).contains("cannot publish"));
    let (_, key) = s.whip("page");
    let path = format!("/publish/live/page?auth_key={key}");
    let (status, body) = http_get(s.http, &path, &[]);
    assert_eq!(status, 200);
    let html = String::from_utf8_lossy(&body);
    let player = html
        .split("<meta name=\"rts-player\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page names its player")
        .to_owned();
    assert!(
        player.starts_with("/play/live/page?vhost=") && player.contains("auth_key="),
        "{player}"
    );

    let mut publisher = ChildGuard::spawn(
        Command::new(&node)
            .current_dir(&dir)
            .arg("publish_page.js")
            .args([&format!("http://{}{path}", s.http), "10"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "publish page",
    )
    .unwrap();
    s.wait_publishing("page");
    let played = node_json(
        &node,
        &dir,
        "player_page.js",
        &[&format!("http://{}{player}", s.http), "--frames", "30"],
        Duration::from_secs(60),
    );
    eprintln!("player from the publish page's link: {played}");
    assert_eq!(played["ok"], true, "{played}");
    assert_eq!(played["videoCodec"], "video/H264", "{played}");
    let p = ffprobe_reads_flv(&ffprobe, &s.signed_flv("page"), 2);
    assert_h264_aac(&p, 20, 80);

    let p = report(&mut publisher, "publish_page.js ends");
    eprintln!("publish page: {p}");
    assert_eq!(p["ok"], true, "{p}");
    assert_eq!(p["pageErrors"], serde_json::json!([]), "{p}");
    let st = &p["stats"];
    assert_eq!(st["videoCodec"], "video/H264", "{p}");
    assert_eq!(st["audioCodec"], "audio/opus", "{p}");
    assert!(
        st["width"].as_u64().unwrap_or(0) > 0,
        "resolution shown: {p}"
    );
    assert!(
        st["videoKbps"].as_f64().unwrap_or(0.0) > 0.0,
        "bitrate shown: {p}"
    );
    assert!(
        st["rttMs"].is_number(),
        "round trip shown (RTCP from the server): {p}"
    );
    assert_eq!(p["deleteStatus"], 200, "Stop ends the session: {p}");
    wait_for("the stream to end after Stop", || {
        s.stream("page").is_none_or(|v| v["publishing"] == false)
    });
}

/// Half-second mode with a stream relay: FFmpeg 9 publishes over WHIP to
/// the ingest domain of a half-second streaming domain, which refuses FLV
/// plays and relays into a second ingest domain; that domain's sub-second
/// streaming domain plays the stream over HTTP-FLV (FFmpeg 9 decodes it),
/// and an RTMP publish to the half-second side is refused with the WHIP URL.
#[test]
fn a_half_second_domain_relays_into_a_sub_second_one() {
    use rts_server::config::{DomainKind, Latency};
    let Some(ffmpeg) = rts_testkit::modern_ffmpeg() else {
        return;
    };
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let _serial = serial();
    const RELAY_INGEST_KEY: &str = "relay-ingest-key";
    const SUB_KEY: &str = "sub-play-key";
    let s = server(|c| {
        // play.localhost (the default streaming domain) becomes half-second
        // and relays push.localhost's streams into relay.localhost.
        for d in &mut c.domains {
            if d.kind == DomainKind::Streaming {
                d.latency = Latency::HalfSecond;
                d.relay = Some("relay.localhost".into());
            }
        }
        let mut relay_in = c.domains[0].clone();
        relay_in.name = "relay.localhost".into();
        relay_in.default = false;
        relay_in.primary_key = Some(RELAY_INGEST_KEY.into());
        relay_in.secondary_key = None;
        let mut sub = c.domains[1].clone();
        sub.name = "sub.localhost".into();
        sub.ingest = Some("relay.localhost".into());
        sub.latency = Latency::SubSecond;
        sub.relay = None;
        sub.default = false;
        sub.primary_key = Some(SUB_KEY.into());
        sub.secondary_key = None;
        c.domains.push(relay_in);
        c.domains.push(sub);
    });
    // RTMP into the half-second side: refused, naming WHIP.
    let out = rts_testkit::run(
        Command::new(&ffmpeg)
            .args(["-hide_banner", "-v", "error", "-re", "-f", "lavfi"])
            .args(["-i", "testsrc2=size=320x180:rate=30", "-t", "2"])
            .args(["-c:v", "libx264", "-f", "flv", &s.signed_rtmp("rtmpx")]),
        "ffmpeg rtmp publish",
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(
        !out.status.success(),
        "RTMP publish to a half-second-only ingest domain"
    );

    let (url, key) = s.whip("half");
    let _publisher = ffmpeg_whip(&ffmpeg, &url, &key, "640x360");
    s.wait_publishing("half");
    wait_for("the relayed stream", || {
        s.hub_streams()
            .iter()
            .any(|i| i.domain == "relay.localhost" && i.stream == "half" && i.publishing)
    });
    // The half-second domain refuses FLV.
    let (status, body) = http_get(
        s.http,
        &format!(
            "/live/half.flv?auth_key={}",
            sign("/live/half.flv", now(), PLAY_KEY)
        ),
        &[],
    );
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("half-second"));
    // The sub-second domain fed by the relay plays it.
    let flv = format!(
        "http://{}/live/half.flv?vhost=sub.localhost&auth_key={}",
        s.http,
        sign("/live/half.flv", now(), SUB_KEY)
    );
    let p = ffprobe_reads_flv(&ffprobe, &flv, 2);
    assert_h264_aac(&p, 40, 80);
}
