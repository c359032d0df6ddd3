//! The `rts-server` example as a user runs it: the printed URLs work with
//! ffmpeg and ffprobe, the WHEP URL plays over WebRTC and the player page is
//! served, a bad config names the field, Ctrl-C stops it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rts_testkit::{ChildGuard, example_bin, free_tcp_port, run, run_ok};

const T: Duration = Duration::from_secs(60);

#[test]
fn bad_config_names_the_field_and_default_config_round_trips() {
    let bin = env!("CARGO_BIN_EXE_rts-server");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[domain]]\nname = 'a'\nkind = 'ingest'\n[[domain]]\nname = 'b'\nkind = 'streaming'\ningest = 'zzz'\n").unwrap();
    let out = run(Command::new(bin).arg("--config").arg(&bad), "rts-server", T).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("domain[1].ingest: no domain named \"zzz\""),
        "{err}"
    );

    let default = run_ok(
        Command::new(bin).arg("--print-default-config"),
        "rts-server",
        T,
    )
    .unwrap();
    assert!(default.contains("[[domain]]"));
    let parsed = rts_server::Config::parse(&default).unwrap();
    assert_eq!(parsed.domains.len(), 2);
    assert_eq!(parsed.listen.rtmp.port(), 1935);
}

#[test]
fn printed_urls_work_and_sigterm_stops_it() {
    let (Some(ffmpeg), Some(ffprobe), Some(kill), Some(file)) = (
        rts_testkit::tool("ffmpeg"),
        rts_testkit::tool("ffprobe"),
        rts_testkit::tool("kill"),
        rts_testkit::fixture("media/baseline_aaclc44k.flv"),
    ) else {
        return;
    };
    let (rtmp, http) = (free_tcp_port(), free_tcp_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rts-server"));
    cmd.args(["--rtmp-listen", &format!("127.0.0.1:{rtmp}")])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .args(["--rtc-listen", "127.0.0.1:0"])
        .args(["--auth-key", "example-key"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut server = ChildGuardWrap(Some(child));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + T;
    while !lines.iter().any(|l: &String| l.contains("e.g.")) {
        let left = deadline.saturating_duration_since(Instant::now());
        lines.push(rx.recv_timeout(left).expect("rts-server printed its URLs"));
    }
    let url = |prefix: &str| -> String {
        lines
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {prefix} line in {lines:#?}"))
    };
    let ingest = url("publish live/demo:");
    let flv = url("flv:");
    let rtmp_play = url("rtmp:");
    assert!(ingest.starts_with(&format!("rtmp://127.0.0.1:{rtmp}/live/demo?auth_key=")));
    assert!(flv.starts_with(&format!("http://127.0.0.1:{http}/live/demo.flv?auth_key=")));
    assert!(lines.iter().any(|l| l.contains("ffmpeg -re -f lavfi")));

    let mut publisher = ChildGuard::spawn(
        Command::new(&ffmpeg)
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-stream_loop",
                "2",
                "-i",
            ])
            .arg(&file)
            .args(["-c", "copy", "-f", "flv", &ingest])
            .stderr(Stdio::piped()),
        "ffmpeg publish",
    )
    .unwrap();
    // Poll until the stream is there (a play before the publish is a 404).
    let deadline = Instant::now() + T;
    let probe = |u: &str| {
        run(
            Command::new(&ffprobe).args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width",
                "-of",
                "csv=p=0",
                u,
            ]),
            "ffprobe",
            T,
        )
        .unwrap()
    };
    loop {
        let out = probe(&flv);
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(text.contains("h264,640"), "{text}");
            assert!(text.contains("aac"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "FLV never played");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = probe(&rtmp_play);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("h264,640"));

    // The printed WHEP URL plays over WebRTC (rts-probe's client side:
    // video through the conversion branch, AAC turned into Opus) and the
    // printed player page is served.
    let whep = url("whep:");
    assert!(whep.starts_with(&format!("http://127.0.0.1:{http}/live/demo/whep?auth_key=")));
    let out = run(
        Command::new(example_bin("rts-probe")).args(["--play", &whep, "--duration", "2"]),
        "rts-probe",
        T,
    )
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert!(v["frames_received"].as_u64().unwrap_or(0) >= 20, "{v}");
    assert!(v["audio_packets"].as_u64().unwrap_or(0) >= 20, "{v}");
    let player = url("player:");
    let path = player
        .split_once(&format!("127.0.0.1:{http}"))
        .map(|(_, p)| p.to_owned())
        .unwrap_or_else(|| panic!("player URL {player}"));
    let page = http_get(http, &path);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("rtsPlayer"), "the player page");

    // Two keys: the play key given, the ingest key random; a play URL
    // never publishes.
    let key_line = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|k| k.trim().to_owned())
            .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:#?}"))
    };
    assert_eq!(key_line("play key (play URLs):"), "example-key");
    let ingest_key = key_line("ingest key (publish URLs):");
    assert_eq!(ingest_key.len(), 32, "a random ingest key: {ingest_key}");

    // SIGTERM (systemd, docker stop) while a publisher is connected: a
    // graceful, quick exit with status 0.
    let pid = server.0.as_ref().unwrap().id();
    run_ok(
        Command::new(kill).args(["-TERM", &pid.to_string()]),
        "kill",
        T,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = server.0.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "rts-server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let _ = publisher.wait_timeout(T);
}

/// `GET path` on 127.0.0.1:`port`: the whole response as text.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Kills the server if the test fails half-way.
struct ChildGuardWrap(Option<std::process::Child>);

impl Drop for ChildGuardWrap {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
