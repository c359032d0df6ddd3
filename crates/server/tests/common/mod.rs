//! The in-process rts-server harness shared by the server tests.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rts_server::Server;
use rts_server::config::{Config, DomainKind};

pub(crate) mod relay;

/// The keys of the default ingest domain (publish URLs).
pub(crate) const INGEST_KEY: &str = "ingest-test-key";
pub(crate) const INGEST_KEY2: &str = "ingest-secondary-test-key";
/// The keys of the default streaming domain (play URLs).
pub(crate) const PLAY_KEY: &str = "play-test-key";
pub(crate) const PLAY_KEY2: &str = "play-secondary-test-key";

pub(crate) struct TestServer {
    pub(crate) rt: Option<tokio::runtime::Runtime>,
    pub(crate) rtmp: SocketAddr,
    pub(crate) http: SocketAddr,
    pub(crate) rtc: SocketAddr,
    pub(crate) hub: rts_server::Hub,
    pub(crate) token: String,
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub(crate) done: Option<tokio::task::JoinHandle<Result<(), rts_server::Error>>>,
}

pub(crate) fn server(edit: impl FnOnce(&mut Config)) -> TestServer {
    let mut c = Config::default();
    c.listen.rtmp = "127.0.0.1:0".parse().unwrap();
    c.listen.http = "127.0.0.1:0".parse().unwrap();
    c.listen.rtc = "127.0.0.1:0".parse().unwrap();
    c.api.token = Some("test-token".into());
    c.set_default_key(DomainKind::Ingest, INGEST_KEY);
    c.set_default_key(DomainKind::Streaming, PLAY_KEY);
    for d in &mut c.domains {
        d.secondary_key = Some(match d.kind {
            DomainKind::Ingest => INGEST_KEY2.into(),
            DomainKind::Streaming => PLAY_KEY2.into(),
        });
    }
    c.limits.publisher_grace_ms = 0;
    edit(&mut c);
    c.finish().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(Server::bind(c)).unwrap();
    let (rtmp, http, rtc) = (server.rtmp_addr(), server.http_addr(), server.rtc_addr());
    let hub = server.hub().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = rt.spawn(server.run(async {
        let _ = rx.await;
    }));
    TestServer {
        rt: Some(rt),
        rtmp,
        http,
        rtc,
        hub,
        token: "test-token".into(),
        stop: Some(tx),
        done: Some(done),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let (Some(rt), Some(done)) = (self.rt.take(), self.done.take()) {
            let r =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), done).await });
            if !std::thread::panicking() {
                assert!(r.is_ok(), "the server did not shut down within 10 s");
            }
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn sign(uri: &str, ts: u64, key: &str) -> String {
    rts_auth::sign(uri, ts, "0", "0", key).unwrap()
}

impl TestServer {
    /// Stops the server as SIGTERM does and waits for `run` to return;
    /// how long that took.
    pub(crate) fn shutdown(&mut self) -> Duration {
        let start = Instant::now();
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let (Some(rt), Some(done)) = (self.rt.as_ref(), self.done.take()) {
            let r =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), done).await });
            assert!(
                matches!(r, Ok(Ok(Ok(())))),
                "the server did not stop cleanly: {r:?}"
            );
        }
        start.elapsed()
    }

    pub(crate) fn rtmp_url(&self, app: &str, stream: &str, auth: Option<String>) -> String {
        let q = auth.map(|k| format!("?auth_key={k}")).unwrap_or_default();
        format!("rtmp://{}/{app}/{stream}{q}", self.rtmp)
    }

    pub(crate) fn signed_rtmp(&self, stream: &str) -> String {
        self.rtmp_url(
            "live",
            stream,
            Some(sign(&format!("/live/{stream}"), now(), INGEST_KEY)),
        )
    }

    pub(crate) fn signed_flv(&self, stream: &str) -> String {
        let k = sign(&format!("/live/{stream}.flv"), now(), PLAY_KEY);
        format!("http://{}/live/{stream}.flv?auth_key={k}", self.http)
    }

    /// The signed WHEP URL of `live/{stream}`.
    pub(crate) fn signed_whep(&self, stream: &str) -> String {
        let k = sign(&format!("/live/{stream}"), now(), PLAY_KEY);
        format!("http://{}/live/{stream}/whep?auth_key={k}", self.http)
    }

    /// The WHIP endpoint of `live/{stream}` and its auth_key (signed over
    /// `/live/{stream}` like an RTMP publish), for a query or a Bearer token.
    pub(crate) fn whip(&self, stream: &str) -> (String, String) {
        let k = sign(&format!("/live/{stream}"), now(), INGEST_KEY);
        (format!("http://{}/live/{stream}/whip", self.http), k)
    }

    pub(crate) fn api(&self, path: &str) -> Option<serde_json::Value> {
        let (status, body) = http_get(
            self.http,
            path,
            &[("Authorization", &format!("Bearer {}", self.token))],
        );
        (status == 200).then(|| serde_json::from_slice(&body).unwrap())
    }

    /// `/metrics` (with the API token), as text.
    pub(crate) fn metrics(&self) -> String {
        let (status, body) = http_get(
            self.http,
            "/metrics",
            &[("Authorization", &format!("Bearer {}", self.token))],
        );
        assert_eq!(status, 200, "GET /metrics");
        String::from_utf8_lossy(&body).into_owned()
    }

    pub(crate) fn stream(&self, name: &str) -> Option<serde_json::Value> {
        self.api(&format!("/api/v1/streams/live/{name}"))
    }

    /// Polls the stream's existence without the API (the HTTP port speaks
    /// TLS): a publisher's stream shows in the hub.
    pub(crate) fn wait_publishing_over_https(&self, name: &str) {
        wait_for(&format!("{name} to be published"), || {
            self.hub_streams()
                .iter()
                .any(|s| s.stream == name && s.video_codec.is_some())
        });
    }

    pub(crate) fn hub_streams(&self) -> Vec<rts_server::hub::StreamInfo> {
        self.hub.streams(Instant::now())
    }

    pub(crate) fn wait_publishing(&self, name: &str) {
        wait_for(&format!("{name} to be published"), || {
            self.stream(name)
                .is_some_and(|s| s["publishing"] == true && s["video_codec"].is_string())
        });
    }
}

/// Debian's python3 with python3-gi and GstWebRTC, and the GStreamer
/// `elements`, or a skip (a pyenv or venv python3 first on PATH has no gi).
pub(crate) fn gst_python(elements: &[&str]) -> Option<std::path::PathBuf> {
    let python = std::path::PathBuf::from("/usr/bin/python3");
    if !python.is_file() {
        return rts_testkit::skip("/usr/bin/python3 (Debian's python3 with python3-gi) is missing");
    }
    for element in elements {
        rts_testkit::gst_element(element)?;
    }
    let gi = std::process::Command::new(&python)
        .args(["-c", "import gi; gi.require_version('GstWebRTC', '1.0')"])
        .status()
        .is_ok_and(|s| s.success());
    if !gi {
        return rts_testkit::skip(
            "python3-gi with GstWebRTC is not installed (apt: python3-gi gir1.2-gst-plugins-bad-1.0)",
        );
    }
    Some(python)
}

/// Polls `cond` until it holds (deadline 30 s).
#[track_caller]
pub(crate) fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plain HTTP/1.1 GET: status and body (of a non-streaming response).
pub(crate) fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    http_request(addr, "GET", path, headers, b"")
}

/// One HTTP/1.1 request (`Connection: close`): status and body.
pub(crate) fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| out[p + 4..].to_vec())
        .unwrap_or_default();
    (status, body)
}

/// Counts FLV video tags read from an HTTP-FLV response until it ends, and
/// the largest step between their timestamps (ms).
pub(crate) fn read_flv(addr: SocketAddr, path: &str) -> (usize, u32, Duration) {
    let start = Instant::now();
    let tags = read_flv_tags(addr, path);
    let took = start.elapsed();
    let (mut video, mut last, mut max_gap) = (0, None, 0);
    for tag in tags
        .iter()
        .filter(|t| t.tag_type == rts_flv::TagType::Video)
    {
        let (h, _) = rts_flv::VideoTagHeader::parse(&tag.data).unwrap();
        if h.is_sequence_header() {
            continue;
        }
        video += 1;
        if let Some(l) = last {
            // A step back counts as the worst step.
            let step = tag.timestamp.checked_sub(l).unwrap_or(u32::MAX);
            max_gap = max_gap.max(step);
        }
        last = Some(tag.timestamp);
    }
    (video, max_gap, took)
}

/// The FLV tags of an HTTP-FLV response, read until it ends.
pub(crate) fn read_flv_tags(addr: SocketAddr, path: &str) -> Vec<rts_flv::Tag> {
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        sock,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = sock.read_to_end(&mut raw);
    // Undo chunked transfer coding, then demux.
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut body = Vec::new();
    let mut rest = &raw[head_end..];
    while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
        let Ok(n) = usize::from_str_radix(std::str::from_utf8(&rest[..p]).unwrap_or("x"), 16)
        else {
            break;
        };
        if n == 0 || rest.len() < p + 2 + n {
            break;
        }
        body.extend_from_slice(&rest[p + 2..p + 2 + n]);
        rest = &rest[(p + 4 + n).min(rest.len())..];
    }
    let mut demux = rts_flv::Demuxer::new();
    let mut buf = bytes::BytesMut::from(&body[..]);
    let mut tags = Vec::new();
    while let Ok(Some(tag)) = demux.decode(&mut buf) {
        tags.push(tag);
    }
    tags
}

/// Runs `rts-probe` with `args` (at most 120 s), checks that it exits 0,
/// and returns its one-line JSON report.
pub(crate) fn run_probe<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> serde_json::Value {
    let out = rts_testkit::run(
        std::process::Command::new(rts_testkit::example_bin("rts-probe")).args(args),
        "rts-probe",
        Duration::from_secs(120),
    )
    .expect("rts-probe ends");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON line ({e}): {stdout}\n{stderr}"))
}
