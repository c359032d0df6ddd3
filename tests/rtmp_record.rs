//! Real RTMP peers against `examples/rtmp-record.rs`: ffmpeg and GStreamer
//! (rtmp2sink, and rtmpsink = librtmp, what OBS descends from) publish, the
//! recording must hold the same frames and codec configuration as the
//! source; ffmpeg plays a stream while it is published.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rts::flv::{Demuxer, TagType};
use rts_testkit::{ChildGuard, ffprobe_packet_counts, run_ok};

struct Recorder {
    _child: ChildGuard,
    port: u16,
    out: PathBuf,
}

impl Recorder {
    fn start(name: &str) -> Self {
        let port = rts_testkit::free_tcp_port();
        let out =
            std::env::temp_dir().join(format!("rts-rtmp-record-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let child = ChildGuard::spawn(
            Command::new(rts_testkit::example_bin("rtmp-record"))
                .args(["--listen", &format!("127.0.0.1:{port}"), "--out"])
                .arg(&out),
            "rtmp-record",
        )
        .expect("start rtmp-record");
        wait_until(Duration::from_secs(20), "rtmp-record to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            _child: child,
            port,
            out,
        }
    }

    fn url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.port)
    }

    fn recording(&self, stream: &str) -> PathBuf {
        self.out.join("live").join(format!("{stream}.flv"))
    }

    /// Waits for the finished (renamed) recording.
    fn wait_recording(&self, stream: &str) -> PathBuf {
        let path = self.recording(stream);
        wait_until(
            Duration::from_secs(30),
            &format!("{}", path.display()),
            || path.is_file(),
        );
        path
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.out);
    }
}

fn wait_until(timeout: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The stream descriptions ffprobe gives (codec, profile, size, rate,
/// channels).
fn describe(ffprobe: &Path, file: &Path) -> String {
    run_ok(
        Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type,codec_name,profile,width,height,sample_rate,channels",
                "-of",
                "csv=p=0",
            ])
            .arg(file),
        "ffprobe",
        Duration::from_secs(30),
    )
    .expect("ffprobe")
}

/// The first AVC and AAC sequence headers (codec configuration) of an FLV
/// file.
fn sequence_headers(file: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut buf = BytesMut::from(&std::fs::read(file).expect("read flv")[..]);
    let mut demux = Demuxer::new();
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    while let Some(tag) = demux.decode(&mut buf).expect("valid flv") {
        let d = &tag.data;
        match tag.tag_type {
            TagType::Video if video.is_empty() && d.len() > 2 && d[1] == 0 => video = d.to_vec(),
            TagType::Audio if audio.is_empty() && d.len() > 2 && d[0] >> 4 == 10 && d[1] == 0 => {
                audio = d.to_vec()
            }
            _ => {}
        }
    }
    (video, audio)
}

fn assert_same_media(ffprobe: &Path, source: &Path, recorded: &Path) {
    let want = ffprobe_packet_counts(ffprobe, source.to_str().unwrap()).unwrap();
    let got = ffprobe_packet_counts(ffprobe, recorded.to_str().unwrap()).unwrap();
    assert!(want.0 > 0 && want.1 > 0, "{want:?}");
    assert_eq!(
        got,
        want,
        "video/audio frames of {} vs {}",
        recorded.display(),
        source.display()
    );
    assert_eq!(describe(ffprobe, recorded), describe(ffprobe, source));
    let (v, a) = sequence_headers(recorded);
    assert!(!v.is_empty() && !a.is_empty());
    assert_eq!(
        (v, a),
        sequence_headers(source),
        "codec configuration differs"
    );
}

fn ffmpeg_publish(ffmpeg: &Path, source: &Path, url: &str, realtime: bool) {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error"]);
    if realtime {
        cmd.arg("-re");
    }
    cmd.arg("-i")
        .arg(source)
        .args(["-c", "copy", "-f", "flv", url]);
    run_ok(&mut cmd, "ffmpeg publish", Duration::from_secs(60)).expect("ffmpeg publishes");
}

#[test]
fn ffmpeg_publishes_every_fixture() {
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some(files) = rts_testkit::media_fixtures() else {
        return;
    };
    let rec = Recorder::start("ffmpeg");
    for (i, source) in files.iter().enumerate() {
        let name = format!("f{i}");
        ffmpeg_publish(&ffmpeg, source, &rec.url(&name), false);
        let recorded = rec.wait_recording(&name);
        assert_same_media(&ffprobe, source, &recorded);
    }
}

#[test]
fn ffmpeg_publishes_in_real_time_with_a_query_string() {
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some(source) = rts_testkit::fixture("media/main_bframes_nonref_aaclc48k.flv") else {
        return;
    };
    let rec = Recorder::start("ffmpeg-re");
    ffmpeg_publish(
        &ffmpeg,
        &source,
        &format!("{}?auth_key=1700000000-0-0-abc", rec.url("re")),
        true,
    );
    assert_same_media(&ffprobe, &source, &rec.wait_recording("re"));
}

fn gst_publish(sink: &str) {
    let Some(gst) = rts_testkit::tool("gst-launch-1.0") else {
        return;
    };
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some(()) = rts_testkit::gst_element(sink) else {
        return;
    };
    let Some(source) = rts_testkit::fixture("media/baseline_aaclc44k.flv") else {
        return;
    };
    let rec = Recorder::start(sink);
    let pipeline = format!(
        "filesrc location={} ! flvdemux name=d d.video ! queue ! h264parse ! mux. \
         d.audio ! queue ! aacparse ! mux. flvmux name=mux streamable=true ! {sink} location={}",
        source.display(),
        rec.url(sink)
    );
    run_ok(
        Command::new(gst)
            .arg("-q")
            .arg("-e")
            .args(pipeline.split_whitespace()),
        sink,
        Duration::from_secs(60),
    )
    .expect("gst-launch publishes");
    assert_same_media(&ffprobe, &source, &rec.wait_recording(sink));
}

#[test]
fn gstreamer_rtmp2sink_publishes() {
    gst_publish("rtmp2sink");
}

#[test]
fn gstreamer_rtmpsink_librtmp_publishes() {
    gst_publish("rtmpsink");
}

#[test]
fn ffmpeg_plays_while_publishing() {
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some(source) = rts_testkit::fixture("media/baseline_aaclc44k.flv") else {
        return;
    };
    let rec = Recorder::start("play");
    let mut publisher = ChildGuard::spawn(
        Command::new(&ffmpeg)
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-re",
                "-stream_loop",
                "1",
                "-i",
            ])
            .arg(&source)
            .args(["-c", "copy", "-f", "flv", &rec.url("live")]),
        "ffmpeg publisher",
    )
    .expect("start publisher");
    let part = rec.out.join("live").join("live.flv.part");
    wait_until(Duration::from_secs(20), "the publication to start", || {
        part.is_file()
    });
    let played = rec.out.join("played.flv");
    run_ok(
        Command::new(&ffmpeg)
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-i",
                &rec.url("live"),
            ])
            .args(["-t", "2", "-c", "copy", "-f", "flv", "-y"])
            .arg(&played),
        "ffmpeg player",
        Duration::from_secs(60),
    )
    .expect("ffmpeg plays");
    let (video, audio) = ffprobe_packet_counts(&ffprobe, played.to_str().unwrap()).unwrap();
    assert!(
        video > 0 && audio > 0,
        "played {video} video, {audio} audio packets"
    );
    let d = describe(&ffprobe, &played);
    assert!(d.contains("h264") && d.contains("aac"), "{d}");
    publisher
        .wait_timeout(Duration::from_secs(30))
        .expect("publisher ends");
}

/// Garbage from one connection (a bad version, a malformed chunk stream,
/// a connection dropped mid-handshake) closes that connection only: the
/// next publisher is recorded.
#[test]
fn bad_connections_do_not_stop_the_server() {
    use std::io::{Read, Write};
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some(source) = rts_testkit::fixture("media/baseline_aaclc48k_mono.flv") else {
        return;
    };
    let rec = Recorder::start("bad");
    let mut valid_handshake = vec![3u8];
    valid_handshake.extend_from_slice(&[0; 1536 * 2]);
    let garbage: Vec<Vec<u8>> = vec![
        vec![6; 1537],
        [&valid_handshake[..], &[0x43, 0, 0, 0, 0, 0, 9, 20][..]].concat(),
        [
            &valid_handshake[..],
            &[2, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0][..],
        ]
        .concat(),
        vec![3; 700],
    ];
    for bytes in garbage {
        let mut conn = TcpStream::connect(("127.0.0.1", rec.port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(&bytes).unwrap();
        if bytes.len() == 700 {
            continue; // dropped mid-handshake
        }
        // The server closes the connection (after S0/S1/S2 when the
        // handshake itself was fine).
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
        assert!(
            sink.len() <= 1 + 2 * 1536,
            "server kept talking: {} bytes",
            sink.len()
        );
    }
    ffmpeg_publish(&ffmpeg, &source, &rec.url("after"), false);
    assert_same_media(&ffprobe, &source, &rec.wait_recording("after"));
}

/// FFmpeg 9 publishes H.265 over Enhanced RTMP (FourCC `hvc1` video tags);
/// the recording holds every frame and FFmpeg 9 decodes it.
#[test]
fn modern_ffmpeg_publishes_hevc_over_enhanced_rtmp() {
    let Some(ffmpeg9) = rts_testkit::modern_ffmpeg() else {
        return;
    };
    let rec = Recorder::start("hevc");
    run_ok(
        Command::new(&ffmpeg9)
            .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=f=440:sample_rate=48000",
                "-t",
                "2",
            ])
            .args(["-c:v", "libx265", "-preset", "ultrafast"])
            .args(["-x265-params", "bframes=3:keyint=30:log-level=error"])
            .args([
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-f",
                "flv",
                &rec.url("hevc"),
            ]),
        "ffmpeg 9 publish",
        Duration::from_secs(120),
    )
    .expect("ffmpeg 9 publishes hevc");
    let recorded = rec.wait_recording("hevc");
    let mut buf = BytesMut::from(&std::fs::read(&recorded).unwrap()[..]);
    let mut demux = Demuxer::new();
    let (mut hevc_frames, mut hevc_config, mut audio) = (0, 0, 0);
    while let Some(tag) = demux.decode(&mut buf).unwrap() {
        let d = &tag.data;
        match tag.tag_type {
            // Enhanced RTMP: IsExHeader bit, packet type, FourCC.
            TagType::Video if d.len() > 5 && d[0] & 0x80 != 0 && &d[1..5] == b"hvc1" => {
                match d[0] & 0x0f {
                    0 => hevc_config += 1,
                    1 | 3 => hevc_frames += 1,
                    _ => {}
                }
            }
            TagType::Audio => audio += 1,
            _ => {}
        }
    }
    assert_eq!((hevc_config, hevc_frames), (1, 60));
    assert!(audio > 90, "{audio} audio tags");
    run_ok(
        Command::new(&ffmpeg9)
            .args(["-v", "error", "-xerror", "-i"])
            .arg(&recorded)
            .args(["-f", "null", "-"]),
        "ffmpeg 9 decode",
        Duration::from_secs(60),
    )
    .expect("the recording decodes");
}
