//! Removes H.264 B-frames from an FLV file, as the server does for WebRTC
//! viewers: `flv-strip-bframes IN.flv OUT.flv [--mode auto|transcode|drop]
//! [--bitrate KBPS]`. Audio and script (metadata) tags are copied untouched.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, bail};
use rts::flv::bytes::BytesMut;
use rts::flv::video::{FrameType, VideoCodec, VideoPacketType, VideoTagHeader};
use rts::flv::{Demuxer, Header, Muxer, Tag, TagType};
use rts::h264::{AccessUnit, Mode, Output, Settings, Stripper};

struct Args {
    input: String,
    output: String,
    mode: Mode,
    bitrate_kbps: Option<u32>,
}

fn args() -> anyhow::Result<Args> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let (mut input, mut output, mut mode, mut bitrate_kbps) = (None, None, Mode::Auto, None);
    while let Some(arg) = p.next()? {
        match arg {
            Long("mode") => {
                let v: String = p.value()?.parse()?;
                mode = v.parse().map_err(|_| {
                    anyhow::anyhow!("--mode must be auto, transcode or drop, not {v:?}")
                })?;
            }
            Long("bitrate") => bitrate_kbps = Some(p.value()?.parse()?),
            Long("help") | Short('h') => {
                println!(
                    "usage: flv-strip-bframes IN.flv OUT.flv [--mode auto|transcode|drop] [--bitrate KBPS]"
                );
                std::process::exit(0);
            }
            Value(v) if input.is_none() => input = Some(v.string()?),
            Value(v) if output.is_none() => output = Some(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let usage =
        "usage: flv-strip-bframes IN.flv OUT.flv [--mode auto|transcode|drop] [--bitrate KBPS]";
    Ok(Args {
        input: input.context(usage)?,
        output: output.context(usage)?,
        mode,
        bitrate_kbps,
    })
}

fn video_tag(
    time: i64,
    keyframe: bool,
    packet: VideoPacketType,
    payload: &[u8],
) -> anyhow::Result<Tag> {
    let frame = if keyframe {
        FrameType::Key
    } else {
        FrameType::Inter
    };
    let mut body = BytesMut::new();
    VideoTagHeader::avc(frame, packet, 0).encode(&mut body)?;
    body.extend_from_slice(payload);
    let ts = u32::try_from(time).context("output time out of the FLV range")?;
    Ok(Tag::new(TagType::Video, ts, body.freeze()))
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let data = std::fs::read(&a.input).with_context(|| format!("reading {}", a.input))?;
    let total = data.len();
    let mut src = BytesMut::from(&data[..]);
    let mut demuxer = Demuxer::new();
    let mut settings = Settings::new(a.mode);
    if let Some(k) = a.bitrate_kbps {
        settings = settings.with_bitrate(k.saturating_mul(1000));
    }
    let mut stripper = Stripper::new(settings);
    let mut out = BytesMut::new();
    let mut muxer: Option<Muxer> = None;
    let mut pending_tags: Vec<Tag> = Vec::new();
    let started = Instant::now();
    let mut last_progress = Instant::now();

    let emit = |stripper: &mut Stripper, pending: &mut Vec<Tag>| -> anyhow::Result<()> {
        while let Some(o) = stripper.pop() {
            match o {
                Output::Config(c) => {
                    pending.push(video_tag(0, true, VideoPacketType::SequenceStart, &c)?)
                }
                Output::Frame(f) => pending.push(video_tag(
                    f.time,
                    f.keyframe,
                    VideoPacketType::CodedFrames,
                    &f.data,
                )?),
                Output::Event(e) => eprintln!("event: {e:?}"),
                _ => {}
            }
        }
        Ok(())
    };

    loop {
        let tag = match demuxer.decode(&mut src)? {
            Some(t) => t,
            None => match demuxer.decode_eof(&mut src)? {
                Some(t) => t,
                None => break,
            },
        };
        if muxer.is_none() {
            let h = demuxer
                .header()
                .copied()
                .unwrap_or_else(|| Header::new(true, true));
            let mut m = Muxer::new(h);
            m.write_header(&mut out);
            muxer = Some(m);
        }
        if tag.tag_type == TagType::Video {
            let (h, payload) = VideoTagHeader::parse(&tag.data)?;
            if h.codec != VideoCodec::Avc {
                bail!(
                    "only H.264 (AVC) video can be stripped, this file has {:?}",
                    h.codec
                );
            }
            match h.packet_type {
                VideoPacketType::SequenceStart => stripper.push_config(payload)?,
                VideoPacketType::CodedFrames => {
                    let dts = i64::from(tag.timestamp);
                    stripper.push(AccessUnit {
                        dts,
                        pts: dts + i64::from(h.composition_time),
                        data: payload,
                    })?
                }
                _ => {}
            }
            emit(&mut stripper, &mut pending_tags)?;
        } else {
            pending_tags.push(tag);
        }
        if let Some(m) = muxer.as_mut() {
            for t in pending_tags.drain(..) {
                m.encode(&t, &mut out)?;
            }
        }
        if last_progress.elapsed().as_secs() >= 1 {
            last_progress = Instant::now();
            let done = total.saturating_sub(src.len());
            eprint!(
                "\r{:5.1}% {} frames",
                done as f64 * 100.0 / total.max(1) as f64,
                stripper.stats().frames_in
            );
            let _ = std::io::stderr().flush();
        }
    }
    stripper.finish()?;
    emit(&mut stripper, &mut pending_tags)?;
    let m = muxer.get_or_insert_with(|| Muxer::new(Header::new(true, true)));
    for t in pending_tags.drain(..) {
        m.encode(&t, &mut out)?;
    }
    std::fs::write(&a.output, &out).with_context(|| format!("writing {}", a.output))?;
    let secs = started.elapsed().as_secs_f64();
    let st = stripper.stats();
    println!(
        "mode {:?}{}: frames in {}, frames out {}, B-frames in {}, removed {}, transcoded {}, {:.1} fps ({:.2} s), openh264 asm {}",
        a.mode,
        if stripper.is_transcoding() {
            " (transcoding)"
        } else {
            ""
        },
        st.frames_in,
        st.frames_out,
        st.b_frames_in,
        st.frames_in.saturating_sub(st.frames_out),
        st.transcoded,
        st.frames_in as f64 / secs.max(1e-9),
        secs,
        rts::h264::ASM,
    );
    Ok(())
}
