//! Test support: a minimal FLV reader/writer (until rts-flv lands) and the
//! streams the tests generate with ffmpeg/x264 and GStreamer.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;

/// One FLV tag.
#[derive(Debug, Clone)]
pub struct Tag {
    pub kind: u8,
    pub timestamp: u32,
    pub body: Bytes,
}

/// All tags of an FLV file (header and previous-tag sizes skipped).
pub fn read_flv(path: &Path) -> Vec<Tag> {
    let data = Bytes::from(std::fs::read(path).unwrap());
    assert_eq!(&data[..3], b"FLV", "{} is not FLV", path.display());
    let header_len = u32::from_be_bytes(data[5..9].try_into().unwrap()) as usize;
    let mut pos = header_len + 4;
    let mut tags = Vec::new();
    while pos + 11 <= data.len() {
        let kind = data[pos] & 0x1f;
        let size = u32::from_be_bytes([0, data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([data[pos + 7], data[pos + 4], data[pos + 5], data[pos + 6]]);
        let body_start = pos + 11;
        if body_start + size > data.len() {
            break;
        }
        tags.push(Tag {
            kind,
            timestamp: ts,
            body: data.slice(body_start..body_start + size),
        });
        pos = body_start + size + 4;
    }
    tags
}

/// A video access unit of an FLV file.
#[derive(Debug, Clone)]
pub struct VideoAu {
    pub dts: i64,
    pub cts: i64,
    pub keyframe: bool,
    pub data: Bytes,
}

/// `(AVC sequence header bodies, access units)` of the video tags.
pub fn video_of(tags: &[Tag]) -> (Vec<Bytes>, Vec<VideoAu>) {
    let mut configs = Vec::new();
    let mut aus = Vec::new();
    for t in tags.iter().filter(|t| t.kind == 9 && t.body.len() >= 5) {
        assert_eq!(t.body[0] & 0x0f, 7, "only AVC video");
        let cts = i32::from_be_bytes([t.body[2], t.body[3], t.body[4], 0]) >> 8;
        match t.body[1] {
            0 => configs.push(t.body.slice(5..)),
            1 => aus.push(VideoAu {
                dts: i64::from(t.timestamp),
                cts: i64::from(cts),
                keyframe: t.body[0] >> 4 == 1,
                data: t.body.slice(5..),
            }),
            _ => {}
        }
    }
    (configs, aus)
}

/// A generated input stream: a name for messages and its FLV path.
pub struct Generated {
    pub name: String,
    pub path: PathBuf,
}

fn ffmpeg_x264(dir: &Path, name: &str, size: &str, secs: &str, x264: &[&str]) -> Option<Generated> {
    let ffmpeg = rts_testkit::tool("ffmpeg")?;
    let path = dir.join(format!("{name}.flv"));
    let mut cmd = Command::new(ffmpeg);
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
    ])
    .arg(format!("testsrc2=size={size}:rate=30"))
    .args([
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        secs,
    ])
    .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "30"])
    .args(x264)
    .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"])
    .arg(&path);
    rts_testkit::run_ok(&mut cmd, "ffmpeg", Duration::from_secs(120)).unwrap();
    Some(Generated {
        name: name.to_owned(),
        path,
    })
}

/// The x264 variants the issue lists, short clips at 320x240 (and one
/// 1080p when `with_1080p`), plus GStreamer x264enc.
pub fn generated_streams(dir: &Path, with_1080p: bool) -> Option<Vec<Generated>> {
    let small = "320x240";
    let mut v = vec![
        ffmpeg_x264(
            dir,
            "x264_bf0",
            small,
            "1",
            &["-profile:v", "main", "-bf", "0"],
        )?,
        ffmpeg_x264(
            dir,
            "x264_bf2_nopyramid",
            small,
            "1",
            &["-bf", "2", "-x264-params", "b-pyramid=none"],
        )?,
        ffmpeg_x264(
            dir,
            "x264_bf3_normal",
            small,
            "1",
            &["-bf", "3", "-x264-params", "b-pyramid=normal"],
        )?,
        ffmpeg_x264(
            dir,
            "x264_bf3_strict",
            small,
            "1",
            &["-bf", "3", "-x264-params", "b-pyramid=strict"],
        )?,
        ffmpeg_x264(
            dir,
            "x264_bf3_slices4",
            small,
            "1",
            &["-bf", "3", "-x264-params", "slices=4"],
        )?,
        ffmpeg_x264(
            dir,
            "x264_bf2_gop10",
            "352x288",
            "1",
            &[
                "-bf",
                "2",
                "-g",
                "10",
                "-x264-params",
                "keyint=10:b-pyramid=normal",
            ],
        )?,
    ];
    if with_1080p {
        v.push(ffmpeg_x264(
            dir,
            "x264_1080p_bf3",
            "1920x1080",
            "0.5",
            &["-preset", "veryfast", "-bf", "3"],
        )?);
    }
    v.push(gstreamer_x264enc(dir)?);
    Some(v)
}

/// GStreamer's x264enc with B-frames, muxed by flvmux.
pub fn gstreamer_x264enc(dir: &Path) -> Option<Generated> {
    let gst = rts_testkit::tool("gst-launch-1.0")?;
    rts_testkit::gst_element("x264enc")?;
    rts_testkit::gst_element("flvmux")?;
    let path = dir.join("gst_x264enc_bf2.flv");
    let mut cmd = Command::new(gst);
    cmd.args([
        "-q",
        "videotestsrc",
        "pattern=ball",
        "num-buffers=45",
        "!",
        "video/x-raw,format=I420,width=320,height=240,framerate=30/1",
    ])
    .args([
        "!",
        "x264enc",
        "bframes=2",
        "key-int-max=30",
        "b-adapt=false",
        "!",
        "flvmux",
        "!",
    ])
    .arg("filesink")
    .arg(format!("location={}", path.display()));
    rts_testkit::run_ok(&mut cmd, "gst-launch-1.0", Duration::from_secs(60)).unwrap();
    Some(Generated {
        name: "gst_x264enc_bf2".to_owned(),
        path,
    })
}

/// ffprobe's `pict_type` of every frame, in presentation order.
pub fn ffprobe_pict_types(path: &Path) -> Option<Vec<char>> {
    let ffprobe = rts_testkit::tool("ffprobe")?;
    let out = rts_testkit::run_ok(
        Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_frames",
                "-show_entries",
                "frame=pict_type",
                "-of",
                "csv=p=0",
            ])
            .arg(path),
        "ffprobe",
        Duration::from_secs(60),
    )
    .unwrap();
    Some(
        out.lines()
            .filter_map(|l| {
                let f = l.split(',').next()?.trim();
                (f.len() == 1).then(|| f.chars().next()).flatten()
            })
            .collect(),
    )
}

/// The four media fixtures and the generated streams.
pub fn all_inputs(dir: &Path, with_1080p: bool) -> Option<Vec<Generated>> {
    let mut v: Vec<Generated> = rts_testkit::media_fixtures()?
        .into_iter()
        .map(|p| Generated {
            name: p.file_stem().unwrap().to_string_lossy().into_owned(),
            path: p,
        })
        .collect();
    v.extend(generated_streams(dir, with_1080p)?);
    Some(v)
}

/// Writes an FLV file with the given tags (kind, timestamp, body).
pub fn write_flv(path: &Path, has_audio: bool, tags: &[Tag]) {
    let mut out = Vec::new();
    out.extend_from_slice(b"FLV\x01");
    out.push(if has_audio { 5 } else { 1 });
    out.extend_from_slice(&9u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    for t in tags {
        let size = t.body.len() as u32;
        out.push(t.kind);
        out.extend_from_slice(&size.to_be_bytes()[1..]);
        out.extend_from_slice(&t.timestamp.to_be_bytes()[1..]);
        out.push((t.timestamp >> 24) as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&t.body);
        out.extend_from_slice(&(size + 11).to_be_bytes());
    }
    std::fs::write(path, out).unwrap();
}

/// An AVC video tag body: `packet_type` 0 (config) or 1 (NAL units), cts 0.
pub fn avc_body(keyframe: bool, packet_type: u8, data: &[u8]) -> Bytes {
    let mut b = vec![if keyframe { 0x17 } else { 0x27 }, packet_type, 0, 0, 0];
    b.extend_from_slice(data);
    Bytes::from(b)
}

#[cfg(feature = "transcode")]
/// Runs a stripper over an FLV file and writes the result (audio and
/// script tags copied). Returns the stripper for its counters.
pub fn strip_file(
    input: &Path,
    output: &Path,
    settings: rts_h264::Settings,
) -> Result<rts_h264::Stripper, rts_h264::Error> {
    use rts_h264::{AccessUnit, Output, Stripper};
    let tags = read_flv(input);
    let mut s = Stripper::new(settings);
    let mut out_tags = Vec::new();
    let drain = |s: &mut Stripper, out_tags: &mut Vec<Tag>| {
        while let Some(o) = s.pop() {
            match o {
                Output::Config(c) => out_tags.push(Tag {
                    kind: 9,
                    timestamp: 0,
                    body: avc_body(true, 0, &c),
                }),
                Output::Frame(f) => out_tags.push(Tag {
                    kind: 9,
                    timestamp: f.time as u32,
                    body: avc_body(f.keyframe, 1, &f.data),
                }),
                Output::Event(e) => eprintln!("event: {e:?}"),
                _ => {}
            }
        }
    };
    for t in &tags {
        if t.kind != 9 {
            out_tags.push(t.clone());
            continue;
        }
        let cts = i64::from(i32::from_be_bytes([t.body[2], t.body[3], t.body[4], 0]) >> 8);
        match t.body[1] {
            0 => s.push_config(t.body.slice(5..))?,
            1 => {
                let dts = i64::from(t.timestamp);
                s.push(AccessUnit {
                    dts,
                    pts: dts + cts,
                    data: t.body.slice(5..),
                })?;
                let lag = s.pending_frames() as u32;
                assert!(
                    lag <= s.max_added_delay_frames(),
                    "delay {lag} above bound {}",
                    s.max_added_delay_frames()
                );
            }
            _ => {}
        }
        drain(&mut s, &mut out_tags);
    }
    s.finish()?;
    drain(&mut s, &mut out_tags);
    write_flv(output, tags.iter().any(|t| t.kind == 8), &out_tags);
    Ok(s)
}

/// `(pict_type, pts_time)` of every frame of `path`, decode order of packets
/// is checked separately.
pub fn ffprobe_frames(path: &Path) -> Vec<(char, f64)> {
    let ffprobe = rts_testkit::find_on_path("ffprobe").unwrap();
    let out = rts_testkit::run_ok(
        Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_frames",
                "-show_entries",
                "frame=pict_type,pts_time",
                "-of",
                "csv=p=0",
            ])
            .arg(path),
        "ffprobe",
        Duration::from_secs(60),
    )
    .unwrap();
    out.lines()
        .filter_map(|l| {
            let mut it = l.split(',');
            let a = it.next()?.trim();
            let b = it.next()?.trim();
            // csv order follows -show_entries' internal order: pts_time, pict_type
            let (t, p) = if a.len() == 1 { (b, a) } else { (a, b) };
            Some((p.chars().next()?, t.parse().ok()?))
        })
        .collect()
}

/// A stream property of the first video stream (e.g. `has_b_frames`).
pub fn ffprobe_stream(path: &Path, entry: &str) -> String {
    let ffprobe = rts_testkit::find_on_path("ffprobe").unwrap();
    rts_testkit::run_ok(
        Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                &format!("stream={entry}"),
                "-of",
                "csv=p=0",
            ])
            .arg(path),
        "ffprobe",
        Duration::from_secs(60),
    )
    .unwrap()
    .trim()
    .to_owned()
}

/// Packet `(dts, pts)` times of the first video stream, in file order.
pub fn ffprobe_packet_times(path: &Path) -> Vec<(f64, f64)> {
    let ffprobe = rts_testkit::find_on_path("ffprobe").unwrap();
    let out = rts_testkit::run_ok(
        Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "packet=dts_time,pts_time",
                "-of",
                "csv=p=0",
            ])
            .arg(path),
        "ffprobe",
        Duration::from_secs(60),
    )
    .unwrap();
    out.lines()
        .filter_map(|l| {
            let mut it = l.split(',');
            Some((
                it.next()?.trim().parse().ok()?,
                it.next()?.trim().parse().ok()?,
            ))
        })
        .collect()
}

/// Average PSNR (dB) of `a` against `b`, both decoded by ffmpeg.
pub fn psnr(a: &Path, b: &Path) -> f64 {
    let ffmpeg = rts_testkit::find_on_path("ffmpeg").unwrap();
    let out = rts_testkit::run(
        Command::new(ffmpeg)
            .args(["-hide_banner", "-i"])
            .arg(a)
            .arg("-i")
            .arg(b)
            .args(["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"]),
        "ffmpeg psnr",
        Duration::from_secs(120),
    )
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let avg = err
        .split("average:")
        .nth(1)
        .unwrap_or_else(|| panic!("no PSNR in ffmpeg output: {err}"));
    let v = avg.split_whitespace().next().unwrap();
    if v == "inf" {
        f64::INFINITY
    } else {
        v.parse().unwrap()
    }
}
