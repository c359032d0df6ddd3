//! rts-flv against real peers: ffprobe 5.1 reads the fixture files (written
//! by ffmpeg 5.1) and what our muxer writes; FFmpeg 8+ writes Enhanced FLV
//! (HEVC, AV1, VP9, Opus) that our demuxer must read.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rts_flv::amf0::Value;
use rts_flv::{
    AudioCodec, AudioPacketType, AudioTagHeader, AvcDecoderConfigurationRecord, Demuxer, FourCc,
    Header, Muxer, ScriptData, Tag, TagType, VideoCodec, VideoPacketType, VideoTagHeader,
};
use rts_testkit::{ffprobe_packet_counts, media_fixtures, modern_ffmpeg, run_ok, tool};

fn demux(data: &[u8]) -> Vec<Tag> {
    let mut buf = BytesMut::from(data);
    let mut d = Demuxer::new().strict(true);
    let mut tags = Vec::new();
    while let Some(t) = d.decode_eof(&mut buf).expect("demux") {
        tags.push(t);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    tags
}

/// (dts, pts, size) of each packet of a stream.
type Timings = Vec<(u32, i64, usize)>;

/// A demuxed media packet: (is_video, dts, pts, payload size).
type Packet = (bool, u32, i64, usize);

/// The tags ffmpeg turns into packets (configs, metadata and sequence ends
/// are not packets), as (is_video, dts, pts, payload size).
fn packets(tags: &[Tag]) -> Vec<Packet> {
    let mut out = Vec::new();
    for t in tags {
        match t.tag_type {
            TagType::Video => {
                let (h, payload) = VideoTagHeader::parse(&t.data).unwrap();
                if matches!(
                    h.packet_type,
                    VideoPacketType::CodedFrames | VideoPacketType::CodedFramesX
                ) {
                    let pts = i64::from(t.timestamp) + i64::from(h.composition_time);
                    out.push((true, t.timestamp, pts, payload.len()));
                }
            }
            TagType::Audio => {
                let (h, payload) = AudioTagHeader::parse(&t.data).unwrap();
                if h.packet_type == AudioPacketType::CodedFrames {
                    out.push((false, t.timestamp, i64::from(t.timestamp), payload.len()));
                }
            }
            _ => {}
        }
    }
    out
}

fn counts(p: &[Packet]) -> (u64, u64) {
    let v = p.iter().filter(|p| p.0).count() as u64;
    (v, p.len() as u64 - v)
}

fn ffprobe_stream(ffprobe: &Path, file: &Path, stream: &str, entries: &str) -> String {
    run_ok(
        Command::new(ffprobe)
            .args(["-v", "error", "-select_streams", stream])
            .args(["-show_entries", entries, "-of", "csv=p=0"])
            .arg(file),
        "ffprobe",
        Duration::from_secs(60),
    )
    .unwrap()
    .trim()
    .to_owned()
}

/// ffprobe's video packets as (dts, pts, size).
fn ffprobe_video_packets(ffprobe: &Path, file: &Path) -> Vec<(u32, i64, usize)> {
    let out = run_ok(
        Command::new(ffprobe)
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .args(["packet=dts,pts,size", "-of", "csv=p=0"])
            .arg(file),
        "ffprobe",
        Duration::from_secs(60),
    )
    .unwrap();
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[1].parse().unwrap(),
                f[0].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

fn profile_name(r: &AvcDecoderConfigurationRecord) -> &'static str {
    match (r.profile, r.compatibility & 0x40 != 0) {
        (66, true) => "Constrained Baseline",
        (66, false) => "Baseline",
        (77, _) => "Main",
        (100, _) => "High",
        _ => "other",
    }
}

#[test]
fn fixtures_agree_with_ffprobe() {
    let Some(files) = media_fixtures() else {
        return;
    };
    let Some(ffprobe) = tool("ffprobe") else {
        return;
    };
    for file in files {
        let tags = demux(&std::fs::read(&file).unwrap());
        let name = file.display().to_string();
        let p = packets(&tags);
        assert_eq!(
            counts(&p),
            ffprobe_packet_counts(&ffprobe, &name).unwrap(),
            "{name}"
        );
        // Every video packet: same dts, pts (dts + composition time) and size.
        let ours: Vec<_> = p.iter().filter(|p| p.0).map(|p| (p.1, p.2, p.3)).collect();
        assert_eq!(ours, ffprobe_video_packets(&ffprobe, &file), "{name}");

        let seq = tags
            .iter()
            .filter(|t| t.tag_type == TagType::Video)
            .map(|t| VideoTagHeader::parse(&t.data).unwrap())
            .find(|(h, _)| h.is_sequence_header())
            .expect("avc sequence header");
        let rec = AvcDecoderConfigurationRecord::parse(&seq.1).unwrap();
        let expected = ffprobe_stream(&ffprobe, &file, "v:0", "stream=codec_name,profile,level");
        assert_eq!(
            format!("h264,{},{}", profile_name(&rec), rec.level),
            expected,
            "{name}"
        );
        assert_eq!(rec.nal_length_size(), 4);
        assert_eq!((rec.sps.len(), rec.pps.len()), (1, 1));
        assert_eq!(
            rec.sps[0][1..4],
            [rec.profile, rec.compatibility, rec.level]
        );

        let meta = tags
            .iter()
            .find(|t| t.tag_type == TagType::Script)
            .map(|t| ScriptData::parse(&t.data).unwrap())
            .expect("onMetaData");
        assert!(meta.is_metadata());
        let dims = ffprobe_stream(&ffprobe, &file, "v:0", "stream=width,height");
        assert_eq!(
            format!(
                "{},{}",
                meta.number("width").unwrap(),
                meta.number("height").unwrap()
            ),
            dims
        );
        assert_eq!(meta.number("videocodecid"), Some(7.0));
        assert_eq!(meta.number("audiocodecid"), Some(10.0));
    }
}

fn write_temp(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

/// ffmpeg decodes the whole file without an error message.
fn decodes_cleanly(ffmpeg: &Path, file: &Path) {
    let out = rts_testkit::run(
        Command::new(ffmpeg)
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(file)
            .args(["-f", "null", "-"]),
        "ffmpeg decode",
        Duration::from_secs(120),
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "",
        "{}",
        file.display()
    );
}

#[test]
fn remuxed_fixtures_read_the_same_in_ffprobe() {
    let Some(files) = media_fixtures() else {
        return;
    };
    let Some(ffprobe) = tool("ffprobe") else {
        return;
    };
    let Some(ffmpeg) = tool("ffmpeg") else { return };
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        let data = std::fs::read(&file).unwrap();
        let tags = demux(&data);
        let mut out = BytesMut::new();
        let mut mux = Muxer::new(Header::new(true, true));
        for t in &tags {
            mux.encode(t, &mut out).unwrap();
        }
        // Byte-identical: ffmpeg's file is already canonical.
        assert_eq!(&out[..], &data[..], "{}", file.display());

        // Now every tag rebuilt from its parsed parts (synthetic file).
        let synth = rebuild(&tags);
        let path = write_temp(dir.path(), "synthetic.flv", &synth);
        let name = file.display().to_string();
        assert_eq!(
            ffprobe_packet_counts(&ffprobe, path.to_str().unwrap()).unwrap(),
            ffprobe_packet_counts(&ffprobe, &name).unwrap()
        );
        for entries in [
            "stream=codec_name,profile,level,width,height",
            "stream=codec_name,profile,sample_rate,channels",
        ] {
            for s in ["v:0", "a:0"] {
                assert_eq!(
                    ffprobe_stream(&ffprobe, &path, s, entries),
                    ffprobe_stream(&ffprobe, &file, s, entries),
                    "{name} {s}"
                );
            }
        }
        assert_eq!(
            ffprobe_video_packets(&ffprobe, &path),
            ffprobe_video_packets(&ffprobe, &file)
        );
        decodes_cleanly(&ffmpeg, &path);
    }
}

/// Re-creates every tag from parsed values with our builders: metadata from
/// a fresh ECMA array, AVC config from the record's fields, headers from
/// their fields, payloads as slices.
fn rebuild(tags: &[Tag]) -> Bytes {
    let mut out = BytesMut::new();
    let mut mux = Muxer::new(Header::new(true, true));
    for t in tags {
        let mut body = BytesMut::new();
        match t.tag_type {
            TagType::Script => {
                let old = ScriptData::parse(&t.data).unwrap();
                let props = old.value.properties().unwrap().to_vec();
                ScriptData::metadata(Value::EcmaArray(props)).encode(&mut body);
            }
            TagType::Video => {
                let (h, payload) = VideoTagHeader::parse(&t.data).unwrap();
                let built = VideoTagHeader::avc(h.frame_type, h.packet_type, h.composition_time);
                built.encode(&mut body).unwrap();
                if h.is_sequence_header() {
                    let r = AvcDecoderConfigurationRecord::parse(&payload).unwrap();
                    let fresh = AvcDecoderConfigurationRecord::from_parameter_sets(
                        r.sps[0].clone(),
                        r.pps.clone(),
                    )
                    .unwrap();
                    fresh.encode(&mut body).unwrap();
                } else {
                    body.extend_from_slice(&payload);
                }
            }
            TagType::Audio => {
                let (h, payload) = AudioTagHeader::parse(&t.data).unwrap();
                AudioTagHeader::aac(h.packet_type)
                    .encode(&mut body)
                    .unwrap();
                body.extend_from_slice(&payload);
            }
            TagType::Other(_) => continue,
        }
        mux.encode(&Tag::new(t.tag_type, t.timestamp, body.freeze()), &mut out)
            .unwrap();
    }
    out.freeze()
}

/// `ffmpeg -copyts -c copy -f framecrc`: per stream, (dts, pts, size) of each packet.
fn framecrc(ffmpeg: &Path, file: &Path) -> (Timings, Timings) {
    let out = run_ok(
        Command::new(ffmpeg)
            .args(["-nostdin", "-v", "error", "-copyts", "-i"])
            .arg(file)
            .args(["-c", "copy", "-copyts", "-f", "framecrc", "-"]),
        "ffmpeg framecrc",
        Duration::from_secs(60),
    )
    .unwrap();
    let (mut v, mut a) = (Vec::new(), Vec::new());
    for l in out.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let p = (
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[4].parse().unwrap(),
        );
        if f[0] == "0" { v.push(p) } else { a.push(p) }
    }
    (v, a)
}

#[test]
fn enhanced_flv_written_by_ffmpeg8() {
    let Some(ffmpeg) = modern_ffmpeg() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], FourCc, Option<FourCc>); 3] = [
        (
            "hevc_opus.flv",
            &[
                "-c:v",
                "libx265",
                "-bf",
                "2",
                "-x265-params",
                "log-level=error",
                "-c:a",
                "libopus",
            ],
            FourCc::HVC1,
            Some(FourCc::OPUS),
        ),
        (
            "av1.flv",
            &["-c:v", "libaom-av1", "-cpu-used", "8", "-g", "10", "-an"],
            FourCc::AV01,
            None,
        ),
        (
            "vp9.flv",
            &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-an"],
            FourCc::VP09,
            None,
        ),
    ];
    for (name, codec_args, video, audio) in cases {
        let path = dir.path().join(name);
        run_ok(
            Command::new(&ffmpeg)
                .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
                .arg("testsrc2=size=320x240:rate=30")
                .args([
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=frequency=440:sample_rate=48000",
                    "-t",
                    "1",
                ])
                .args(codec_args)
                .args(["-f", "flv"])
                .arg(&path),
            "ffmpeg 8 encode",
            Duration::from_secs(120),
        )
        .unwrap();
        let data = std::fs::read(&path).unwrap();
        let tags = demux(&data);
        let mut saw_video_config = false;
        let mut saw_audio_config = false;
        for t in &tags {
            match t.tag_type {
                TagType::Video => {
                    let (h, _) = VideoTagHeader::parse(&t.data).unwrap();
                    assert!(h.enhanced, "{name}");
                    assert_eq!(h.codec.fourcc(), Some(video), "{name}");
                    assert!(!matches!(h.codec, VideoCodec::UnknownFourCc(_)));
                    saw_video_config |= h.is_sequence_header();
                }
                TagType::Audio => {
                    let (h, _) = AudioTagHeader::parse(&t.data).unwrap();
                    assert_eq!(Some(h.codec), audio.map(AudioCodec::from_fourcc), "{name}");
                    assert_eq!(h.codec, AudioCodec::Opus);
                    saw_audio_config |= h.is_sequence_header();
                }
                _ => {}
            }
        }
        assert!(saw_video_config, "{name}");
        assert_eq!(saw_audio_config, audio.is_some(), "{name}");

        // Every packet ffmpeg reads: same dts, pts (hevc: with composition
        // time) and payload size.
        let p = packets(&tags);
        let (fv, fa) = framecrc(&ffmpeg, &path);
        let ours_v: Vec<_> = p.iter().filter(|p| p.0).map(|p| (p.1, p.2, p.3)).collect();
        let ours_a: Vec<_> = p.iter().filter(|p| !p.0).map(|p| (p.1, p.2, p.3)).collect();
        assert_eq!(ours_v, fv, "{name}");
        assert_eq!(ours_a, fa, "{name}");
        assert!(fv.len() >= 25, "{name}: {} video packets", fv.len());
        if video == FourCc::HVC1 {
            assert!(
                p.iter().any(|p| p.0 && p.2 != i64::from(p.1)),
                "hevc with B-frames has composition times"
            );
        }

        // Rebuilding every header with our encoder gives a file ffmpeg reads
        // identically.
        let mut out = BytesMut::new();
        let mut mux = Muxer::new(Header::new(audio.is_some(), true));
        for t in &tags {
            let mut body = BytesMut::new();
            match t.tag_type {
                TagType::Video => {
                    let (h, payload) = VideoTagHeader::parse(&t.data).unwrap();
                    h.encode(&mut body).unwrap();
                    body.extend_from_slice(&payload);
                }
                TagType::Audio => {
                    let (h, payload) = AudioTagHeader::parse(&t.data).unwrap();
                    h.encode(&mut body).unwrap();
                    body.extend_from_slice(&payload);
                }
                _ => body.extend_from_slice(&t.data),
            }
            assert_eq!(body, t.data, "{name}: header rebuilt byte for byte");
            mux.encode(&Tag::new(t.tag_type, t.timestamp, body.freeze()), &mut out)
                .unwrap();
        }
        let remuxed = write_temp(dir.path(), "remuxed.flv", &out);
        assert_eq!(framecrc(&ffmpeg, &remuxed), (fv, fa), "{name}");
    }
}
