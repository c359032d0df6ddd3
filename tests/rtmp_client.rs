//! `ClientSession` against a real server: ffmpeg in listen mode
//! (`ffmpeg -listen 1 -i rtmp://...`) receives a fixture published by our
//! client and records it; the recording has the fixture's frames.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rts::flv::{Demuxer, TagType};
use rts::rtmp::session::{ClientEvent, ClientSession, Config, MediaKind};
use rts_testkit::{ChildGuard, ffprobe_packet_counts};

#[test]
fn client_session_publishes_to_ffmpeg() {
    let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some(source) = rts_testkit::fixture("media/main_bframes_nonref_aaclc48k.flv") else {
        return;
    };
    let port = rts_testkit::free_tcp_port();
    let out = std::env::temp_dir().join(format!("rts-rtmp-client-{}.flv", std::process::id()));
    let url = format!("rtmp://127.0.0.1:{port}/live/in");
    let mut server = ChildGuard::spawn(
        Command::new(&ffmpeg)
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-listen",
                "1",
            ])
            .args(["-i", &url, "-c", "copy", "-f", "flv", "-y"])
            .arg(&out),
        "ffmpeg -listen",
    )
    .expect("start ffmpeg");

    // Connection refused until ffmpeg listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut conn = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "ffmpeg never listened: {e}");
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    };
    conn.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();

    let mut tags = BytesMut::from(&std::fs::read(&source).unwrap()[..]);
    let mut demux = Demuxer::new();
    let mut client = ClientSession::new(
        Config::default(),
        &format!("rtmp://127.0.0.1:{port}/live"),
        "live",
        &[7; 1528],
    );
    client.publish("in");
    let mut started = false;
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started {
        assert!(Instant::now() < deadline, "publish never started");
        while let Some(b) = client.poll_transmit() {
            conn.write_all(&b).unwrap();
        }
        match conn.read(&mut buf) {
            Ok(0) => panic!("ffmpeg closed the connection"),
            Ok(n) => client.handle_input(Instant::now(), &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                ClientEvent::PublishStarted { .. } => started = true,
                ClientEvent::Error(e) => panic!("client error: {e}"),
                _ => {}
            }
        }
    }
    while let Some(tag) = demux.decode(&mut tags).unwrap() {
        let kind = match tag.tag_type {
            TagType::Audio => MediaKind::Audio,
            TagType::Video => MediaKind::Video,
            TagType::Script => {
                let values = rts::flv::amf0::decode_all(&tag.data).unwrap();
                client.send_metadata(&values[1]);
                continue;
            }
            _ => continue,
        };
        assert!(client.send_media(kind, tag.timestamp, tag.data));
        while let Some(b) = client.poll_transmit() {
            conn.write_all(&b).unwrap();
        }
    }
    client.close(Some("in"));
    while let Some(b) = client.poll_transmit() {
        conn.write_all(&b).unwrap();
    }
    drop(conn);
    let status = server
        .wait_timeout(Duration::from_secs(30))
        .expect("ffmpeg ends");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let want = ffprobe_packet_counts(&ffprobe, source.to_str().unwrap()).unwrap();
    let got = ffprobe_packet_counts(&ffprobe, out.to_str().unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(got, want);
}
