//! rts-flv against a second real muxer: GStreamer's `flvmux` (x264enc +
//! avenc_aac), checked packet by packet with ffprobe.

use std::process::Command;
use std::time::Duration;

use bytes::BytesMut;
use rts_flv::{
    AudioPacketType, AudioTagHeader, AvcDecoderConfigurationRecord, Demuxer, ScriptData, TagType,
    VideoPacketType, VideoTagHeader,
};
use rts_testkit::{ffprobe_packet_counts, gst_element, run_ok, tool};

#[test]
fn gstreamer_flvmux_agrees_with_ffprobe() {
    let Some(gst) = tool("gst-launch-1.0") else {
        return;
    };
    let Some(ffprobe) = tool("ffprobe") else {
        return;
    };
    for e in ["x264enc", "flvmux", "avenc_aac", "h264parse", "aacparse"] {
        if gst_element(e).is_none() {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for streamable in ["true", "false"] {
        let path = dir.path().join(format!("gst-{streamable}.flv"));
        let pipeline = format!(
            "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 \
             ! x264enc bframes=2 ! h264parse ! flvmux name=m streamable={streamable} \
             ! filesink location={} \
             audiotestsrc num-buffers=40 ! audioconvert ! avenc_aac ! aacparse ! m.",
            path.display()
        );
        run_ok(
            Command::new(&gst)
                .arg("-q")
                .args(pipeline.split_whitespace()),
            "gst-launch-1.0 flvmux",
            Duration::from_secs(120),
        )
        .unwrap();

        let data = std::fs::read(&path).unwrap();
        let mut buf = BytesMut::from(&data[..]);
        let mut demux = Demuxer::new().strict(true);
        let (mut video, mut audio, mut scripts) = (Vec::new(), 0u64, 0u64);
        let mut config = None;
        while let Some(tag) = demux.decode_eof(&mut buf).unwrap() {
            match tag.tag_type {
                TagType::Video => {
                    let (h, payload) = VideoTagHeader::parse(&tag.data).unwrap();
                    match h.packet_type {
                        VideoPacketType::SequenceStart => {
                            config = Some(AvcDecoderConfigurationRecord::parse(&payload).unwrap())
                        }
                        VideoPacketType::CodedFrames => video.push((
                            i64::from(tag.timestamp) + i64::from(h.composition_time),
                            tag.timestamp,
                            payload.len(),
                        )),
                        VideoPacketType::SequenceEnd => assert!(payload.is_empty()),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                TagType::Audio => {
                    let (h, _) = AudioTagHeader::parse(&tag.data).unwrap();
                    audio += u64::from(h.packet_type == AudioPacketType::CodedFrames);
                }
                TagType::Script => {
                    let s = ScriptData::parse(&tag.data).unwrap();
                    assert!(s.is_metadata());
                    assert_eq!(s.number("width"), Some(320.0));
                    scripts += 1;
                }
                TagType::Other(t) => panic!("unexpected tag type {t}"),
            }
        }
        assert!(buf.is_empty());
        assert!(scripts >= 1);
        let file = path.to_str().unwrap();
        assert_eq!(
            (video.len() as u64, audio),
            ffprobe_packet_counts(&ffprobe, file).unwrap(),
            "streamable={streamable}"
        );
        let probe = run_ok(
            Command::new(&ffprobe)
                .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
                .args(["packet=pts,dts,size", "-of", "csv=p=0", file]),
            "ffprobe",
            Duration::from_secs(60),
        )
        .unwrap();
        let expected: Vec<(i64, u32, usize)> = probe
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(video, expected, "streamable={streamable}");
        assert!(
            video.iter().any(|(pts, dts, _)| *pts != i64::from(*dts)),
            "B-frames"
        );

        let profile = run_ok(
            Command::new(&ffprobe)
                .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
                .args(["stream=level", "-of", "csv=p=0", file]),
            "ffprobe",
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(profile.trim(), config.unwrap().level.to_string());
    }
}
