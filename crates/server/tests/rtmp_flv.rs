//! rts-server with real peers: ffmpeg and GStreamer publish over RTMP,
//! ffmpeg/ffprobe play over RTMP and HTTP-FLV; auth refusals, a second
//! publisher, a viewer that stops reading, malformed RTMP, a small load.
//!
//! Each test runs the server in-process on 127.0.0.1 port 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rts_server::Server;
use rts_server::config::Config;
use rts_testkit::{ChildGuard, run_ok};

mod common;
use common::*;

const T: Duration = Duration::from_secs(60);

fn ffmpeg() -> Option<PathBuf> {
    rts_testkit::tool("ffmpeg")
}

fn publish(ffmpeg: &Path, input: &Path, url: &str, re: bool, loops: u32) -> ChildGuard {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error"]);
    if re {
        cmd.arg("-re");
    }
    cmd.args(["-stream_loop", &loops.to_string(), "-i"])
        .arg(input)
        .args(["-c", "copy", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    ChildGuard::spawn(&mut cmd, "ffmpeg publish").unwrap()
}

fn record(ffmpeg: &Path, url: &str, out: &Path) -> ChildGuard {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-y", "-i", url])
        .args(["-c", "copy", "-f", "flv"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    ChildGuard::spawn(&mut cmd, "ffmpeg record").unwrap()
}

/// What ffprobe says about a file.
#[derive(Debug, PartialEq)]
struct Probe {
    video: String,
    audio: String,
    width: u32,
    height: u32,
    video_frames: usize,
    b_frames: usize,
}

fn probe(ffprobe: &Path, file: &Path) -> Probe {
    let streams = run_ok(
        Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type,codec_name,width,height",
            ])
            .args(["-of", "json"])
            .arg(file),
        "ffprobe streams",
        T,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&streams).unwrap();
    let find = |t: &str| {
        v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["codec_type"] == t)
            .cloned()
            .unwrap_or_default()
    };
    let (video, audio) = (find("video"), find("audio"));
    let frames = run_ok(
        Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "frame=pict_type",
            ])
            .args(["-of", "csv=p=0"])
            .arg(file),
        "ffprobe frames",
        T,
    )
    .unwrap();
    let types: Vec<&str> = frames
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Probe {
        video: video["codec_name"].as_str().unwrap_or("").into(),
        audio: audio["codec_name"].as_str().unwrap_or("").into(),
        width: video["width"].as_u64().unwrap_or(0) as u32,
        height: video["height"].as_u64().unwrap_or(0) as u32,
        video_frames: types.len(),
        b_frames: types.iter().filter(|t| t.starts_with('B')).count(),
    }
}

fn ok_exit(child: &mut ChildGuard, what: &str) {
    let out = child.wait_timeout(T).unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every fixture, published with `-re -c copy`, played back over HTTP-FLV
/// and RTMP: same codecs and size, B-frames kept, frames within one GOP.
#[test]
fn fixtures_play_back_over_flv_and_rtmp() {
    let (Some(ffmpeg), Some(ffprobe), Some(files)) = (
        ffmpeg(),
        rts_testkit::tool("ffprobe"),
        rts_testkit::media_fixtures(),
    ) else {
        return;
    };
    let s = server(|_| {});
    let dir = tempfile::tempdir().unwrap();
    // All at once: four streams on one server.
    let mut runs = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let name = format!("fixture{i}");
        let publisher = publish(&ffmpeg, file, &s.signed_rtmp(&name), true, 0);
        runs.push((file.clone(), name, publisher));
    }
    let mut recorders = Vec::new();
    for (file, name, publisher) in runs {
        s.wait_publishing(&name);
        let k = sign(&format!("/live/{name}"), now(), PLAY_KEY);
        let rtmp_play = s.rtmp_url("live", &name, Some(k));
        let flv_out = dir.path().join(format!("{name}.flv.flv"));
        let rtmp_out = dir.path().join(format!("{name}.rtmp.flv"));
        let flv = record(&ffmpeg, &s.signed_flv(&name), &flv_out);
        let rtmp = record(&ffmpeg, &rtmp_play, &rtmp_out);
        recorders.push((file, publisher, flv, flv_out, rtmp, rtmp_out));
    }
    for (file, mut publisher, mut flv, flv_out, mut rtmp, rtmp_out) in recorders {
        ok_exit(&mut publisher, "publisher");
        ok_exit(&mut flv, "FLV recorder");
        ok_exit(&mut rtmp, "RTMP recorder");
        let sent = probe(&ffprobe, &file);
        let gop = if sent.width == 1280 { 60 } else { 30 };
        for (what, out) in [("flv", &flv_out), ("rtmp", &rtmp_out)] {
            let got = probe(&ffprobe, out);
            let name = file.file_name().unwrap().to_string_lossy();
            assert_eq!(
                (&got.video, &got.audio, got.width, got.height),
                (&sent.video, &sent.audio, sent.width, sent.height),
                "{name} over {what}"
            );
            assert!(
                got.video_frames <= sent.video_frames
                    && got.video_frames + gop >= sent.video_frames,
                "{name} over {what}: {} frames of {} (GOP {gop})",
                got.video_frames,
                sent.video_frames
            );
            assert_eq!(
                got.b_frames > 0,
                sent.b_frames > 0,
                "{name} over {what}: B-frames"
            );
            eprintln!(
                "{name} over {what}: {} of {} frames, {} B",
                got.video_frames, sent.video_frames, got.b_frames
            );
        }
    }
}

/// GStreamer's rtmp2sink publishes (x264enc + voaacenc/avenc_aac when present).
#[test]
fn gstreamer_rtmp2sink_publishes() {
    let (Some(gst), Some(()), Some(()), Some(ffmpeg), Some(ffprobe)) = (
        rts_testkit::tool("gst-launch-1.0"),
        rts_testkit::gst_element("rtmp2sink"),
        rts_testkit::gst_element("x264enc"),
        ffmpeg(),
        rts_testkit::tool("ffprobe"),
    ) else {
        return;
    };
    let s = server(|c| c.disable_signing());
    let url = format!("rtmp://{}/live/gst", s.rtmp);
    let mut cmd = Command::new(gst);
    cmd.args(["-q", "videotestsrc", "is-live=true", "num-buffers=150", "!"])
        .args(["video/x-raw,width=320,height=240,framerate=30/1", "!"])
        .args([
            "x264enc",
            "tune=zerolatency",
            "key-int-max=30",
            "!",
            "flvmux",
            "streamable=true",
            "!",
        ])
        .arg("rtmp2sink")
        .arg(format!("location={url}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut gst = ChildGuard::spawn(&mut cmd, "gst-launch rtmp2sink").unwrap();
    s.wait_publishing("gst");
    let info = s.stream("gst").unwrap();
    assert_eq!(info["video_codec"], "h264");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gst.flv");
    let mut rec = record(&ffmpeg, &format!("http://{}/live/gst.flv", s.http), &out);
    ok_exit(&mut gst, "gst-launch");
    ok_exit(&mut rec, "FLV recorder");
    let got = probe(&ffprobe, &out);
    assert_eq!(
        (got.video.as_str(), got.width, got.height),
        ("h264", 320, 240)
    );
    assert!(got.video_frames > 30, "{got:?}");
}

/// No key, a wrong key, a key for another stream and an expired key are
/// refused with their reason over RTMP and HTTP-FLV; the secondary key
/// works; a stream goes on past its URL's expiry.
#[test]
fn auth_refusals_and_secondary_key() {
    let (Some(ffmpeg), Some(file)) = (
        ffmpeg(),
        rts_testkit::fixture("media/baseline_aaclc44k.flv"),
    ) else {
        return;
    };
    let s = server(|_| {});
    let t = now();
    let cases = [
        ("none", None, "missing auth_key"),
        (
            "wrong key",
            Some(sign("/live/a", t, "nope")),
            "invalid md5hash=",
        ),
        (
            "other stream",
            Some(sign("/live/b", t, INGEST_KEY)),
            "invalid md5hash=",
        ),
        (
            "expired",
            Some(sign("/live/a", t - 1441 * 60, INGEST_KEY)),
            "expired timestamp=",
        ),
        (
            // A viewer's RTMP play URL never publishes (another key).
            "play url",
            Some(sign("/live/a", t, PLAY_KEY)),
            "invalid md5hash=",
        ),
        (
            "timestamp a year ahead",
            Some(sign("/live/a", t + 365 * 86_400, INGEST_KEY)),
            "in the future",
        ),
        ("malformed", Some("123".into()), "malformed auth_key"),
    ];
    for (what, key, reason) in &cases {
        let mut p = publish(
            &ffmpeg,
            &file,
            &s.rtmp_url("live", "a", key.clone()),
            false,
            0,
        );
        let out = p.wait_timeout(T).unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: publish accepted");
        assert!(err.contains(reason), "{what}: ffmpeg said {err}");
    }
    // HTTP-FLV: 403 with the reason.
    let flv_cases = [
        ("none", String::new(), "missing auth_key"),
        (
            "rtmp key",
            format!("?auth_key={}", sign("/live/a", t, PLAY_KEY)),
            "invalid md5hash=",
        ),
        (
            "expired",
            format!("?auth_key={}", sign("/live/a.flv", t - 1441 * 60, PLAY_KEY)),
            "expired timestamp=",
        ),
    ];
    for (what, q, reason) in &flv_cases {
        let (status, body) = http_get(s.http, &format!("/live/a.flv{q}"), &[]);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 403, "{what}");
        assert!(body.starts_with(reason), "{what}: {body}");
    }
    // The secondary key publishes, with a URL that expires 2 s from now:
    // the running stream goes on.
    let t = now();
    let expiring = sign("/live/a", t + 5 - 1440 * 60, INGEST_KEY2);
    let mut p = publish(
        &ffmpeg,
        &file,
        &s.rtmp_url("live", "a", Some(expiring)),
        true,
        3,
    );
    s.wait_publishing("a");
    let expires = t + 5;
    wait_for("the URL to expire while publishing", || now() > expires + 1);
    let info = s.stream("a").unwrap();
    assert_eq!(info["publishing"], true, "{info}");
    // Now a viewer with the secondary key.
    let k2 = sign("/live/a.flv", now(), PLAY_KEY2);
    let (status, _) = {
        let mut sock = TcpStream::connect(s.http).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            sock,
            "GET /live/a.flv?auth_key={k2} HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 64];
        let n = sock.read(&mut buf).unwrap();
        (String::from_utf8_lossy(&buf[..n]).to_string(), ())
    };
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    ok_exit(&mut p, "publisher");
    let metrics = s.metrics();
    assert!(
        metrics.contains("rts_errors_total{kind=\"auth\"} 10"),
        "{metrics}"
    );
    // The API wants its token.
    assert_eq!(http_get(s.http, "/api/v1/streams", &[]).0, 401);
    assert_eq!(
        http_get(
            s.http,
            "/api/v1/streams",
            &[("Authorization", "Bearer wrong")]
        )
        .0,
        401
    );
}

/// A second publisher of the same stream is refused ("stream already
/// publishing") while the first goes on.
#[test]
fn second_publisher_is_refused_first_continues() {
    let (Some(ffmpeg), Some(file)) = (
        ffmpeg(),
        rts_testkit::fixture("media/baseline_aaclc44k.flv"),
    ) else {
        return;
    };
    let s = server(|_| {});
    let mut first = publish(&ffmpeg, &file, &s.signed_rtmp("one"), true, 1);
    s.wait_publishing("one");
    let mut second = publish(&ffmpeg, &file, &s.signed_rtmp("one"), false, 0);
    let out = second.wait_timeout(T).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("stream already publishing"), "{err}");
    let before = s.stream("one").unwrap()["bytes_in"].as_u64().unwrap();
    wait_for("the first publisher to go on", || {
        s.stream("one")
            .is_some_and(|i| i["bytes_in"].as_u64().unwrap() > before)
    });
    ok_exit(&mut first, "first publisher");
}

/// A viewer that stops reading is dropped; another viewer of the same
/// stream gets every frame, and is not held back (measured).
#[test]
fn stalled_viewer_is_dropped_alone() {
    let (Some(ffmpeg), Some(file)) = (
        ffmpeg(),
        rts_testkit::fixture("media/baseline_aaclc44k.flv"),
    ) else {
        return;
    };
    let s = server(|c| {
        c.limits.viewer_queue_frames = 1024;
        c.limits.max_gop_frames = 1024;
        c.limits.max_behind_ms = 500;
        c.disable_signing();
    });
    // 30 times real time: 61 x 90 frames (13 MB) in about 6 s, so the
    // stalled viewer's socket buffers fill.
    let loops = 60;
    let started = Instant::now();
    let url = format!("rtmp://{}/live/fast", s.rtmp);
    let mut cmd = Command::new(&ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-readrate", "30"])
        .args(["-stream_loop", &loops.to_string(), "-i"])
        .arg(&file)
        .args(["-c", "copy", "-f", "flv", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut p = ChildGuard::spawn(&mut cmd, "ffmpeg publish").unwrap();
    s.wait_publishing("fast");
    let mut stalled = TcpStream::connect(s.http).unwrap();
    write!(stalled, "GET /live/fast.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let addr = s.http;
    let healthy = std::thread::spawn(move || read_flv(addr, "/live/fast.flv"));
    ok_exit(&mut p, "publisher");
    let published_in = started.elapsed();
    let (frames, max_gap, took) = healthy.join().unwrap();
    let sent = 90 * (loops as usize + 1);
    eprintln!(
        "publisher pushed {sent} frames in {published_in:?}; healthy viewer got {frames} video frames \
         (largest timestamp step {max_gap} ms), done {took:?} after joining"
    );
    assert!(
        frames <= sent + 2 && frames * 2 >= sent,
        "healthy viewer: {frames} of {sent}"
    );
    // (ffmpeg's -stream_loop may repeat a frame at a loop boundary, hence
    // `sent + 2`.) A lost frame shows as a timestamp step; dropping goes to the next
    // keyframe (30 frames, 1 s).
    assert!(
        max_gap < 100,
        "the healthy viewer lost frames: a {max_gap} ms step"
    );
    assert!(
        took < published_in + Duration::from_secs(10),
        "the healthy viewer was held back: {took:?}"
    );
    let metrics = s.metrics();
    assert!(
        metrics.contains("rts_errors_total{kind=\"slow_viewer\"} 1\n"),
        "{metrics}"
    );
    // The server also closed the stalled connection (it stopped reading for
    // longer than max_behind): reading what was buffered ends in EOF or a
    // reset, not in our read timeout.
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut sink = Vec::new();
    if let Err(e) = stalled.read_to_end(&mut sink) {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the stalled connection is still open: {e}"
        );
    }
}

/// Malformed RTMP ends only that connection.
#[test]
fn malformed_rtmp_ends_only_that_connection() {
    let (Some(ffmpeg), Some(file)) = (
        ffmpeg(),
        rts_testkit::fixture("media/baseline_aaclc44k.flv"),
    ) else {
        return;
    };
    let s = server(|c| c.limits.max_message_bytes = 1 << 20);
    let mut p = publish(&ffmpeg, &file, &s.signed_rtmp("m"), true, 2);
    s.wait_publishing("m");
    let closes = |what: &str, bytes: Vec<u8>, handshake: bool| {
        let mut c = TcpStream::connect(s.rtmp).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if handshake {
            let mut c0c1 = vec![3u8];
            c0c1.extend_from_slice(&[7u8; 1536]);
            c.write_all(&c0c1).unwrap();
            let mut s0s1s2 = vec![0u8; 3073];
            c.read_exact(&mut s0s1s2).unwrap();
            c.write_all(&s0s1s2[1..1537]).unwrap();
        }
        let _ = c.write_all(&bytes);
        let mut sink = Vec::new();
        // The server closes: EOF (or a reset), not a timeout.
        match c.read_to_end(&mut sink) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{what}: the server kept the connection open"
            ),
        }
    };
    closes("bad version", vec![6u8; 1537], false);
    closes(
        "garbage",
        (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect(),
        false,
    );
    // A chunk that declares a 16 MiB message of type 20, then nothing more
    // would wait; one beyond the limit is refused at once.
    let mut huge = vec![0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 1, 0, 0, 0];
    huge.extend_from_slice(&[0u8; 128]);
    closes("huge length", huge, true);
    // Truncated handshake: we give up; the server must not care.
    {
        let mut c = TcpStream::connect(s.rtmp).unwrap();
        c.write_all(&[3, 1, 2, 3]).unwrap();
    }
    let before = s.stream("m").unwrap()["bytes_in"].as_u64().unwrap();
    wait_for("the publisher to go on", || {
        s.stream("m")
            .is_some_and(|i| i["publishing"] == true && i["bytes_in"].as_u64().unwrap() > before)
    });
    let metrics = s.metrics();
    assert!(
        !metrics.contains("rts_errors_total{kind=\"protocol\"} 0\n"),
        "{metrics}"
    );
    ok_exit(&mut p, "publisher");
}

/// With `[tls]`, the HTTP port serves HTTPS: ffprobe plays FLV over it.
#[test]
fn https_serves_flv() {
    let (Some(ffmpeg), Some(ffprobe), Some(openssl), Some(file)) = (
        ffmpeg(),
        rts_testkit::tool("ffprobe"),
        rts_testkit::tool("openssl"),
        rts_testkit::fixture("media/baseline_aaclc44k.flv"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    run_ok(
        Command::new(openssl)
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        "openssl req",
        T,
    )
    .unwrap();
    let tls = rts_server::config::Tls {
        cert: cert.clone(),
        key: key.clone(),
    };
    let s = server(move |c| c.tls = Some(tls));
    let mut p = publish(&ffmpeg, &file, &s.signed_rtmp("tls"), true, 0);
    s.wait_publishing_over_https("tls");
    let k = sign("/live/tls.flv", now(), PLAY_KEY);
    let url = format!("https://{}/live/tls.flv?auth_key={k}", s.http);
    let out = run_ok(
        Command::new(&ffprobe).args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width",
            "-of",
            "csv=p=0",
            &url,
        ]),
        "ffprobe https",
        T,
    )
    .unwrap();
    assert!(out.contains("h264,640"), "{out}");
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let (status, _) = http_get(s.http, "/metrics", &[]);
    assert_eq!(status, 0);
    ok_exit(&mut p, "publisher");
    // A key that does not fit is a config error naming the field.
    let c = Config {
        tls: Some(rts_server::config::Tls {
            cert,
            key: dir.path().join("missing.pem"),
        }),
        listen: rts_server::config::Listen {
            rtmp: "127.0.0.1:0".parse().unwrap(),
            http: "127.0.0.1:0".parse().unwrap(),
            rtc: "127.0.0.1:0".parse().unwrap(),
        },
        ..Config::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(Server::bind(c)).unwrap_err().to_string();
    assert!(err.starts_with("config: tls.key:"), "{err}");
}

/// A publisher that comes back within the grace period keeps its viewers:
/// the FLV response goes on through both publications with continuous
/// timestamps, and ends after the grace period once the second one leaves.
#[test]
fn republish_within_grace_keeps_viewers() {
    let (Some(ffmpeg), Some(file)) = (
        ffmpeg(),
        rts_testkit::fixture("media/baseline_aaclc44k.flv"),
    ) else {
        return;
    };
    let s = server(|c| c.limits.publisher_grace_ms = 5000);
    let mut first = publish(&ffmpeg, &file, &s.signed_rtmp("re"), true, 0);
    s.wait_publishing("re");
    let k = sign("/live/re.flv", now(), PLAY_KEY);
    let addr = s.http;
    let viewer = std::thread::spawn(move || read_flv(addr, &format!("/live/re.flv?auth_key={k}")));
    wait_for("the viewer", || {
        s.stream("re").is_some_and(|i| i["viewers"]["flv"] == 1)
    });
    ok_exit(&mut first, "first publisher");
    wait_for("the grace period", || {
        s.stream("re").is_some_and(|i| i["publishing"] == false)
    });
    let mut second = publish(&ffmpeg, &file, &s.signed_rtmp("re"), true, 0);
    s.wait_publishing("re");
    assert_eq!(
        s.stream("re").unwrap()["viewers"]["flv"],
        1,
        "the viewer stayed"
    );
    ok_exit(&mut second, "second publisher");
    // ffmpeg ends each publication with an AVC end-of-sequence tag: 91
    // video tags each.
    let (frames, max_gap, took) = viewer.join().unwrap();
    eprintln!("republish: {frames} video frames, largest step {max_gap} ms, {took:?}");
    assert!(
        frames > 90 + 30 && frames <= 182,
        "{frames} frames over two publications"
    );
    assert!(
        max_gap < 200,
        "timestamps jumped by {max_gap} ms at the republish"
    );
    wait_for("the stream to end", || s.stream("re").is_none());
}
