//! Hostile clients: each test attacks a real server on loopback and then
//! checks that a real client (ffmpeg, ffprobe or Chromium) is still served.
//! Attacks come from 127.0.0.2 (Linux routes all of 127/8 to loopback), so
//! per-address caps do not touch the real client on 127.0.0.1. Every loop is
//! bounded in count and time.
//!
//! Covered elsewhere, against ffmpeg too: a viewer's play URL used to
//! publish, and an auth_key timestamp a year ahead
//! (`rtmp_flv.rs`, `auth_refusals_and_secondary_key`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use rts_testkit::{ChildGuard, run};

const T: Duration = Duration::from_secs(30);
const ATTACKER: [u8; 4] = [127, 0, 0, 2];

fn tools() -> Option<(PathBuf, PathBuf, PathBuf)> {
    Some((
        rts_testkit::tool("ffmpeg")?,
        rts_testkit::tool("ffprobe")?,
        rts_testkit::fixture("media/baseline_aaclc44k.flv")?,
    ))
}

/// ffmpeg publishing the fixture in a loop, in real time.
fn publish(ffmpeg: &PathBuf, file: &PathBuf, url: &str) -> ChildGuard {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    ChildGuard::spawn(&mut cmd, "ffmpeg publish").unwrap()
}

/// The real client: ffprobe reads the stream over HTTP-FLV.
#[track_caller]
fn assert_served(ffprobe: &PathBuf, s: &TestServer, stream: &str) {
    let out = run(
        Command::new(ffprobe).args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
            &s.signed_flv(stream),
        ]),
        "ffprobe",
        T,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("h264") && text.contains("aac"),
        "ffprobe: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` TCP connections to `to` from `ip`.
fn connect_from(ip: [u8; 4], to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        for _ in 0..n {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind(SocketAddr::from((ip, 0))).unwrap();
            let s = sock.connect(to).await.unwrap().into_std().unwrap();
            s.set_nonblocking(false).unwrap();
            out.push(s);
        }
        out
    })
}

/// Whether the server closed `s` (EOF or reset) within `within`; what it
/// sent before is returned too.
fn closed_within(s: &mut TcpStream, within: Duration) -> (bool, Vec<u8>) {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (false, got);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return (true, got);
            }
            Err(_) => return (false, got),
        }
    }
}

/// 300 connections that never finish their request headers: past the
/// per-address cap (100) they are refused at once (with a 503 when the
/// client has not sent anything yet, else the close may be a reset); the
/// rest are closed when the header deadline passes (2.5 s here). A connection that made one
/// request and then idles is closed too. ffprobe plays throughout.
#[test]
fn half_sent_http_requests_are_capped_and_time_out() {
    let Some((ffmpeg, ffprobe, file)) = tools() else {
        return;
    };
    let s = server(|c| {
        c.limits.http_header_timeout_ms = 2500;
        c.limits.max_http_per_ip = 100;
    });
    let _p = publish(&ffmpeg, &file, &s.signed_rtmp("h"));
    s.wait_publishing("h");
    let started = Instant::now();
    let half_sent = |conns: &mut Vec<TcpStream>| {
        for c in conns {
            // Never finished: no blank line.
            let _ = c.write_all(b"GET /api/v1/streams HTTP/1.1\r\nHost: x\r\n");
        }
    };
    let mut conns = connect_from(ATTACKER, s.http, 100);
    half_sent(&mut conns);
    // The cap is reached (the listener accepts in order): the next one
    // from that address is told why, at once.
    let mut next = connect_from(ATTACKER, s.http, 1).pop().unwrap();
    let (closed, got) = closed_within(&mut next, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&got);
    assert!(closed && text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("too many connections"), "{text}");
    let mut more = connect_from(ATTACKER, s.http, 199);
    half_sent(&mut more);
    conns.extend(more);
    // An idle keep-alive connection: one whole request, then nothing.
    let mut idle = TcpStream::connect(s.http).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_served(&ffprobe, &s, "h");
    for c in &mut conns {
        let (closed, _) = closed_within(c, Duration::from_secs(8));
        assert!(closed, "a half-sent request still open after 8 s");
    }
    let (closed, got) = closed_within(&mut idle, Duration::from_secs(8));
    assert!(
        closed && got.starts_with(b"HTTP/1.1 200"),
        "idle keep-alive"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    let m = s.hub.metrics();
    assert_eq!(m.refused_http.load(Ordering::Relaxed), 200);
    // The 100 half-sent requests and the idle connection.
    assert!(m.deadline_closes.load(Ordering::Relaxed) >= 101);
    assert_served(&ffprobe, &s, "h");
}

/// 150 RTMP connections that never send the handshake, and one that sends
/// a byte every 300 ms: past the per-address cap (100) refused at once, the
/// rest closed at the handshake deadline (3 s). ffmpeg publishes and
/// ffprobe plays throughout. Every connection ends one way or the other;
/// how many meet the cap depends on how fast this machine opens them
/// before the first deadlines free places, so the split is not asserted.
#[test]
fn silent_and_slow_rtmp_connections_are_capped_and_time_out() {
    let Some((ffmpeg, ffprobe, file)) = tools() else {
        return;
    };
    let s = server(|c| {
        c.limits.handshake_timeout_ms = 3000;
        c.limits.max_rtmp_per_ip = 100;
    });
    let mut conns = connect_from(ATTACKER, s.rtmp, 150);
    let slow = conns.pop().unwrap();
    let dripper = std::thread::spawn(move || {
        let mut slow = slow;
        // A version byte, then one byte of C1 every 300 ms: never done.
        let started = Instant::now();
        let mut sent = 0;
        while started.elapsed() < Duration::from_secs(10) {
            if slow.write_all(&[3]).is_err() {
                return (true, started.elapsed(), sent);
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        (false, started.elapsed(), sent)
    });
    let _p = publish(&ffmpeg, &file, &s.signed_rtmp("r"));
    s.wait_publishing("r");
    assert_served(&ffprobe, &s, "r");
    for c in &mut conns {
        let (closed, _) = closed_within(c, Duration::from_secs(8));
        assert!(closed, "a silent RTMP connection still open after 8 s");
    }
    let (cut, after, bytes) = dripper.join().unwrap();
    assert!(cut, "the slow handshake was never cut off");
    assert!(
        after < Duration::from_secs(8),
        "cut after {after:?} ({bytes} bytes)"
    );
    let m = s.hub.metrics();
    let refused = m.refused_rtmp.load(Ordering::Relaxed);
    let timed_out = m.deadline_closes.load(Ordering::Relaxed);
    assert!(refused >= 1, "no connection met the per-address cap");
    assert!(
        refused + timed_out >= 150,
        "{refused} refused + {timed_out} timed out of 150"
    );
    assert_served(&ffprobe, &s, "r");
}

/// Before its publish is accepted a connection may send messages of at
/// most 64 KiB: a 1 MiB message after the handshake ends that connection.
/// After authorisation the publisher's own limit applies: ffmpeg sends
/// 1080p with B-frames, AAC and a 10 s GOP, whose keyframes are larger
/// than 64 KiB, and the FLV viewer gets them.
#[test]
fn large_messages_before_publish_end_the_connection_but_not_after() {
    let Some((ffmpeg, _ffprobe, _)) = tools() else {
        return;
    };
    let s = server(|_| {});
    let mut c = connect_from(ATTACKER, s.rtmp, 1).pop().unwrap();
    // C0 C1, then (after S0 S1 S2) C2.
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 1536]);
    c.write_all(&c0c1).unwrap();
    let mut s012 = vec![0u8; 1 + 1536 * 2];
    c.set_read_timeout(Some(T)).unwrap();
    c.read_exact(&mut s012).unwrap();
    c.write_all(&s012[1..1537]).unwrap();
    // A format-0 chunk header on csid 3: a 1 MiB AMF0 command message.
    let len: u32 = 1 << 20;
    let mut chunk = vec![0x03, 0, 0, 0];
    chunk.extend_from_slice(&len.to_be_bytes()[1..]);
    chunk.extend_from_slice(&[0x14, 0, 0, 0, 0]);
    chunk.extend_from_slice(&[0x02; 128]);
    c.write_all(&chunk).unwrap();
    let (closed, _) = closed_within(&mut c, Duration::from_secs(5));
    assert!(closed, "a 1 MiB message before publish was taken");
    assert!(
        s.hub
            .metrics()
            .errors(rts_server::metrics::ErrorKind::Protocol)
            >= 1
    );

    let mut cmd = Command::new(&ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "4", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-bf", "2", "-g", "300", "-b:v", "6M"])
        .args(["-c:a", "aac", "-f", "flv", &s.signed_rtmp("big")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut p = ChildGuard::spawn(&mut cmd, "ffmpeg 1080p").unwrap();
    s.wait_publishing("big");
    let k = sign("/live/big.flv", now(), PLAY_KEY);
    let tags = read_flv_tags(s.http, &format!("/live/big.flv?auth_key={k}"));
    let out = p.wait_timeout(T).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let video: Vec<_> = tags
        .iter()
        .filter(|t| t.tag_type == rts_flv::TagType::Video)
        .collect();
    assert!(video.len() >= 30, "{} video tags", video.len());
    let largest = video.iter().map(|t| t.data.len()).max().unwrap_or(0);
    assert!(largest > 64 << 10, "largest video message {largest} bytes");
}

/// A publisher that goes silent with its TCP connection still open (here:
/// ffmpeg stopped with SIGSTOP, as a laptop that lost its network) loses
/// the stream to a new publisher after `publisher_silence_ms`; while it
/// still sends, a second publisher is refused. The FLV viewer stays on the
/// same response, its timestamps continuous across the change.
#[test]
fn a_half_open_publisher_is_replaced_and_the_viewer_continues() {
    let (Some((ffmpeg, _ffprobe, file)), Some(kill)) = (tools(), rts_testkit::tool("kill")) else {
        return;
    };
    let s = server(|c| c.limits.publisher_silence_ms = 1000);
    let url = s.signed_rtmp("ho");
    let first = publish(&ffmpeg, &file, &url);
    s.wait_publishing("ho");
    let k = sign("/live/ho.flv", now(), PLAY_KEY);
    let addr = s.http;
    let viewer = std::thread::spawn(move || read_flv(addr, &format!("/live/ho.flv?auth_key={k}")));
    wait_for("the FLV viewer", || {
        s.stream("ho").is_some_and(|i| i["viewers"]["flv"] == 1)
    });
    // While the first one sends, a second is refused.
    let once = |loops: &str| {
        let mut cmd = Command::new(&ffmpeg);
        cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-stream_loop", loops, "-i"])
            .arg(&file)
            .args(["-c", "copy", "-f", "flv", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        ChildGuard::spawn(&mut cmd, "second publisher").unwrap()
    };
    let out = once("0").wait_timeout(T).unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already publishing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first goes silent.
    rts_testkit::run_ok(
        Command::new(&kill).args(["-STOP", &first.id().to_string()]),
        "kill -STOP",
        T,
    )
    .unwrap();
    let stopped = Instant::now();
    // A new encoder session retries, as OBS does, until it is let in
    // (bounded): each attempt is refused at once or takes the stream over.
    let takeovers = || s.hub.metrics().publisher_takeovers.load(Ordering::Relaxed);
    let mut second = None;
    for _ in 0..20 {
        let mut p = once("1");
        let deadline = Instant::now() + T;
        loop {
            if takeovers() == 1 {
                second = Some(p);
                break;
            }
            if let Some(status) = p.child().unwrap().try_wait().unwrap() {
                assert!(!status.success(), "exited without taking over");
                break;
            }
            assert!(Instant::now() < deadline, "neither refused nor let in");
            std::thread::sleep(Duration::from_millis(20));
        }
        if second.is_some() {
            break;
        }
    }
    let mut second = second.expect("a new publisher was let in");
    // Silence counts from the first publisher's last frame, which came a
    // little before `stopped` (ffmpeg -re sends a frame every 23-33 ms):
    // let in after publisher_silence_ms (1000) less that one frame.
    let waited = stopped.elapsed();
    assert!(
        waited >= Duration::from_millis(1000 - 50),
        "let in after {waited:?}"
    );
    // It plays its file twice and leaves; the viewer's response ends with
    // it (grace 0): the viewer saw both publishers on one response.
    let out = second.wait_timeout(T).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(first);
    let (video, max_gap, _) = viewer.join().unwrap();
    assert!(video > 60, "{video} video tags");
    assert!(max_gap <= 200, "largest timestamp step {max_gap} ms");
}

/// On shutdown an RTMP player is told the stream ended (ffmpeg exits with
/// status 0), an HTTP-FLV response ends with its last chunk, and the server
/// returns within `shutdown_ms`.
#[test]
fn shutdown_ends_rtmp_and_flv_viewers_cleanly() {
    let Some((ffmpeg, _ffprobe, file)) = tools() else {
        return;
    };
    let mut s = server(|c| c.limits.shutdown_ms = 3000);
    let _p = publish(&ffmpeg, &file, &s.signed_rtmp("sd"));
    s.wait_publishing("sd");
    let k = sign("/live/sd", now(), PLAY_KEY);
    let mut player = ChildGuard::spawn(
        Command::new(&ffmpeg)
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(s.rtmp_url("live", "sd", Some(k)))
            .args(["-c", "copy", "-f", "null", "-"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        "ffmpeg rtmp player",
    )
    .unwrap();
    let mut flv = TcpStream::connect(s.http).unwrap();
    let fk = sign("/live/sd.flv", now(), PLAY_KEY);
    write!(
        flv,
        "GET /live/sd.flv?auth_key={fk} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    wait_for("both viewers", || {
        s.stream("sd")
            .is_some_and(|i| i["viewers"]["flv"] == 1 && i["viewers"]["rtmp"] == 1)
    });
    let took = s.shutdown();
    assert!(took < Duration::from_millis(3500), "shutdown took {took:?}");
    let out = player.wait_timeout(T).unwrap();
    assert!(
        out.status.success(),
        "the RTMP player did not end cleanly: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (closed, body) = closed_within(&mut flv, T);
    assert!(closed);
    assert!(
        body.ends_with(b"0\r\n\r\n"),
        "the FLV response ended without its last chunk"
    );
}

/// `/metrics` and the API want the token in an `Authorization` header; a
/// token in the query string is refused (it would end up in logs).
#[test]
fn metrics_and_api_take_the_token_in_a_header_only() {
    let s = server(|_| {});
    let bearer = format!("Bearer {}", s.token);
    assert_eq!(http_get(s.http, "/metrics", &[]).0, 401);
    let (status, body) = http_get(s.http, "/metrics", &[("Authorization", &bearer)]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("rts_buffered_bytes "));
    let q = format!("/api/v1/streams?token={}", s.token);
    assert_eq!(http_get(s.http, &q, &[]).0, 401);
    assert_eq!(
        http_get(
            s.http,
            "/api/v1/streams",
            &[("Authorization", "Bearer wrong")]
        )
        .0,
        401
    );
    assert_eq!(
        http_get(s.http, "/api/v1/streams", &[("Authorization", &bearer)]).0,
        200
    );
    let open = server(|c| c.api.public_metrics = true);
    assert_eq!(http_get(open.http, "/metrics", &[]).0, 200);
}

/// A stream name that is also a play URL (`x.flv`) is refused at publish,
/// and so is any publisher while the GOP caches hold
/// `limits.max_buffered_bytes`; ffmpeg gets the reason.
#[test]
fn play_extensions_and_a_full_server_refuse_publishers_with_a_reason() {
    let Some((ffmpeg, ffprobe, file)) = tools() else {
        return;
    };
    let s = server(|c| {
        c.limits.max_gop_bytes = 1 << 20;
        c.limits.max_buffered_bytes = 1 << 20;
    });
    let refused = |stream: &str| {
        let mut cmd = Command::new(&ffmpeg);
        cmd.args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(&file)
            .args(["-c", "copy", "-f", "flv", &s.signed_rtmp(stream)])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let out = ChildGuard::spawn(&mut cmd, "ffmpeg")
            .unwrap()
            .wait_timeout(T)
            .unwrap();
        assert!(!out.status.success(), "{stream}: accepted");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = refused("x.flv");
    assert!(e.contains("ends in .flv"), "{e}");
    let _p = publish(&ffmpeg, &file, &s.signed_rtmp("ok"));
    s.wait_publishing("ok");
    // Another stream's GOP fills the server (through the hub, as a
    // publisher with 1 MiB keyframes would).
    let t = Instant::now();
    let key = rts_server::hub::StreamKey::new("push.localhost", "live", "huge");
    let mut huge = s.hub.publish(key, t).unwrap();
    let mut idr = vec![0x17, 1, 0, 0, 0];
    idr.resize(1 << 20, 0);
    assert!(huge.push(
        t,
        rts_server::hub::FrameKind::Video,
        0,
        bytes::Bytes::from(idr)
    ));
    assert!(s.hub.buffered_bytes() >= 1 << 20);
    let e = refused("late");
    assert!(e.contains("server is full"), "{e}");
    // Those already publishing are served.
    assert_served(&ffprobe, &s, "ok");
}

/// A STUN flood (2,000 ports, garbage and binding requests for made-up
/// sessions) and 300 offers that never connect (past 64 pending from one
/// address: 503 with the reason) do not stop a new Chromium viewer.
#[test]
fn stun_flood_and_never_connecting_offers_do_not_stop_a_viewer() {
    let Some((ffmpeg, _ffprobe, file)) = tools() else {
        return;
    };
    let Some((node, dir)) = rts_testkit::browser() else {
        return;
    };
    let s = server(|_| {});
    let _p = publish(&ffmpeg, &file, &s.signed_rtmp("f"));
    s.wait_publishing("f");
    // STUN: 2,000 source ports, 5 datagrams each.
    let attacker = IpAddr::from(ATTACKER);
    let mut sent = 0;
    for batch in 0..10 {
        let socks: Vec<UdpSocket> = (0..200)
            .map(|_| UdpSocket::bind((attacker, 0)).unwrap())
            .collect();
        for (i, u) in socks.iter().enumerate() {
            for n in 0..5u8 {
                let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
                m.extend_from_slice(&[batch as u8, i as u8, n, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
                if n == 4 {
                    m = vec![0x16, 0xfe, 0xfd, n, 1, 2, 3];
                }
                if u.send_to(&m, s.rtc).is_ok() {
                    sent += 1;
                }
            }
        }
    }
    assert!(sent >= 9_000);
    // Offers that never connect, from the attacker's address.
    let cert = rts_webrtc::Certificate::generate().unwrap();
    let local = SocketAddr::from((ATTACKER, 9));
    let config = rts_webrtc::Config {
        local_addr: local,
        candidates: vec![local],
        certificate: cert,
        ice_ufrag: String::new(),
        ice_pwd: String::new(),
        video_ssrc: 1,
        audio_ssrc: 2,
        idle_timeout: Duration::from_secs(15),
        stats_interval: Duration::from_secs(1),
        tcp_candidates: Vec::new(),
    };
    let (_peer, offer) =
        rts_webrtc::Peer::offer(Instant::now(), rts_webrtc::Role::Publisher, &config).unwrap();
    let k = sign("/live/f", now(), PLAY_KEY);
    let (mut created, mut unavailable) = (0, 0);
    for conn in connect_from(ATTACKER, s.http, 300) {
        let mut conn = conn;
        write!(
            conn,
            "POST /live/f/whep?auth_key={k} HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{offer}",
            offer.len()
        )
        .unwrap();
        let mut text = String::new();
        conn.set_read_timeout(Some(T)).unwrap();
        let _ = conn.read_to_string(&mut text);
        if text.starts_with("HTTP/1.1 201") {
            created += 1;
        } else if text.starts_with("HTTP/1.1 503") {
            assert!(text.contains("still connecting"), "{text}");
            unavailable += 1;
        } else {
            panic!("unexpected answer: {text}");
        }
    }
    assert_eq!(created, 64, "64 pending sessions per address");
    assert_eq!(unavailable, 236);
    let url = format!("http://{}/live/f/whep?auth_key={k}", s.http);
    let r = rts_testkit::node_json(&node, &dir, "whep_play.js", &[&url, "3"], T);
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        r["video"]["framesDecoded"].as_u64().unwrap_or(0) >= 30,
        "{r}"
    );
}

/// Out of file descriptors (the server started with `ulimit -n 64`, then
/// more connections than that): `accept` fails with EMFILE and the server
/// backs off rather than spinning; once the attacker's connections close,
/// ffmpeg publishes and ffprobe plays.
#[test]
fn out_of_file_descriptors_backs_off_and_recovers() {
    let (Some((ffmpeg, ffprobe, file)), Some(sh)) = (tools(), rts_testkit::tool("sh")) else {
        return;
    };
    let (rtmp, http) = (rts_testkit::free_tcp_port(), rts_testkit::free_tcp_port());
    let mut cmd = Command::new(sh);
    cmd.args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_rts-server"))
        .args(["--rtmp-listen", &format!("127.0.0.1:{rtmp}")])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .args(["--rtc-listen", "127.0.0.1:0", "--no-auth"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = ChildGuard::spawn(&mut cmd, "rts-server").unwrap();
    server
        .wait_for_line(|l| l.starts_with("rts-server:"), T)
        .expect("rts-server started");
    let pid = server.id();
    let cpu = || -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = stat.rsplit_once(')').unwrap().1;
        let f: Vec<u64> = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|v| v.parse().unwrap())
            .collect();
        // clock ticks: 100 per second on Linux.
        Duration::from_millis((f[0] + f[1]) * 10)
    };
    let to = SocketAddr::from(([127, 0, 0, 1], rtmp));
    let conns = connect_from(ATTACKER, to, 100);
    let before = cpu();
    let window = Instant::now();
    // The connections beyond the limit wait in the backlog; the server
    // retries accept with a back-off meanwhile.
    let mut probe = TcpStream::connect(to).unwrap();
    let (closed, _) = closed_within(&mut probe, Duration::from_secs(2));
    assert!(!closed, "the listener kept its backlog");
    let used = cpu().saturating_sub(before);
    let spent = window.elapsed();
    assert!(
        used < spent / 4,
        "{used:?} of CPU in {spent:?} while out of descriptors: a busy loop"
    );
    drop(conns);
    drop(probe);
    let base = format!("127.0.0.1:{rtmp}");
    let url = format!("rtmp://{base}/live/fd");
    let _p = publish(&ffmpeg, &file, &url);
    let flv = format!("http://127.0.0.1:{http}/live/fd.flv");
    let deadline = Instant::now() + T;
    loop {
        let out = run(
            Command::new(&ffprobe)
                .args(["-v", "error", "-show_entries", "stream=codec_name"])
                .args(["-of", "csv=p=0", &flv]),
            "ffprobe",
            T,
        )
        .unwrap();
        if out.status.success() {
            assert!(String::from_utf8_lossy(&out.stdout).contains("h264"));
            break;
        }
        assert!(Instant::now() < deadline, "never served after EMFILE");
        std::thread::sleep(Duration::from_millis(200));
    }
}
