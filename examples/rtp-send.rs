//! Sends an FLV file as RTP over UDP in real time and writes an SDP file a
//! standard receiver (ffmpeg, VLC, GStreamer) opens:
//!
//! ```text
//! cargo run --example rtp-send IN.flv --to 127.0.0.1:PORT --sdp OUT.sdp [--start-delay MS]
//! ffmpeg -protocol_whitelist file,udp,rtp -i OUT.sdp ...
//! ```
//!
//! The video must be H.264 with no B-frames (RTP timestamps are
//! presentation times and the packetizer sends in decoding order). Video
//! goes to PORT with RTCP sender reports to PORT+1; AAC audio is transcoded
//! to Opus (rts-audio, done before sending starts) and goes to PORT+2, RTCP
//! to PORT+3. `--start-delay MS` waits that long after writing the SDP
//! before sending, so a receiver can be started first. At the end RTCP BYEs
//! are sent (receivers such as ffmpeg stop on them). The last line on
//! stdout is `sent N video frames, P packets, A audio frames`.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use rts::audio::transcode::{AacToOpus, Config as OpusConfig, OpusPacket};
use rts::flv::bytes::{Bytes, BytesMut};
use rts::flv::{
    AudioCodec, AudioTagHeader, AvcDecoderConfigurationRecord, Demuxer, TagType, VideoTagHeader,
};
use rts::rtp::ext::Extensions;
use rts::rtp::{h264, opus, rtcp};

struct Args {
    input: PathBuf,
    to: SocketAddr,
    sdp: PathBuf,
    start_delay: Duration,
}

fn args() -> anyhow::Result<Args> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let (mut input, mut to, mut sdp, mut delay) = (None, None, None, 0u64);
    while let Some(a) = p.next()? {
        match a {
            Long("to") => to = Some(p.value()?.string()?.parse().context("--to wants IP:PORT")?),
            Long("sdp") => sdp = Some(PathBuf::from(p.value()?)),
            Long("start-delay") => delay = p.value()?.parse()?,
            Value(v) if input.is_none() => input = Some(PathBuf::from(v)),
            Long("help") | Short('h') => {
                println!(
                    "usage: rtp-send IN.flv --to 127.0.0.1:PORT --sdp OUT.sdp [--start-delay MS]"
                );
                std::process::exit(0);
            }
            _ => return Err(a.unexpected().into()),
        }
    }
    Ok(Args {
        input: input.context("missing IN.flv")?,
        to: to.context("missing --to IP:PORT")?,
        sdp: sdp.context("missing --sdp OUT.sdp")?,
        start_delay: Duration::from_millis(delay),
    })
}

struct Frame {
    ms: u32,
    au: Bytes,
}

struct Media {
    config: AvcDecoderConfigurationRecord,
    frames: Vec<Frame>,
    opus: Vec<OpusPacket>,
    stereo: bool,
}

fn read_flv(path: &PathBuf) -> anyhow::Result<Media> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut buf = BytesMut::from(&data[..]);
    let mut demux = Demuxer::new();
    let mut config = None;
    let mut frames = Vec::new();
    let mut opus = Vec::new();
    let mut aac: Option<AacToOpus> = None;
    while let Some(tag) = demux.decode_eof(&mut buf).context("bad FLV")? {
        match tag.tag_type {
            TagType::Audio => {
                let (h, payload) = AudioTagHeader::parse(&tag.data).context("bad audio tag")?;
                if h.codec != AudioCodec::Aac {
                    continue;
                }
                if h.is_sequence_header() {
                    let t = match aac.as_mut() {
                        Some(t) => t,
                        None => aac.insert(AacToOpus::new(OpusConfig::default())?),
                    };
                    t.set_config(&payload).context("bad AudioSpecificConfig")?;
                } else if let Some(t) = aac.as_mut() {
                    t.push(payload, Duration::from_millis(u64::from(tag.timestamp)))?;
                    opus.extend(std::iter::from_fn(|| t.pop()));
                }
            }
            TagType::Video => {
                let (h, payload) = VideoTagHeader::parse(&tag.data).context("bad video tag")?;
                if h.is_sequence_header() {
                    config = Some(
                        AvcDecoderConfigurationRecord::parse(&payload).context("bad AVC config")?,
                    );
                } else if h.composition_time != 0 {
                    bail!(
                        "the video has B-frames (composition time {} ms); re-encode with -bf 0",
                        h.composition_time
                    );
                } else if !payload.is_empty() {
                    frames.push(Frame {
                        ms: tag.timestamp,
                        au: payload,
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(t) = aac.as_mut() {
        t.flush()?;
        opus.extend(std::iter::from_fn(|| t.pop()));
    }
    Ok(Media {
        config: config.context("no AVC sequence header: is the video H.264?")?,
        frames,
        opus,
        stereo: aac.as_ref().is_some_and(|t| t.channels() == 2),
    })
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let m = read_flv(&a.input)?;
    let length_size = m.config.nal_length_size();

    let ssrc = std::process::id().wrapping_mul(2_654_435_761);
    let audio_ssrc = ssrc.wrapping_add(1);
    let mut pk = h264::Packetizer::new(h264::Config {
        ssrc,
        payload_type: 96,
        ..Default::default()
    })?;
    pk.set_parameter_sets(m.config.sps.clone(), m.config.pps.clone());
    let mut opk = opus::Packetizer::new(opus::Config {
        payload_type: 111,
        ssrc: audio_ssrc,
        ..Default::default()
    });
    let audio_sdp = if m.opus.is_empty() {
        String::new()
    } else {
        format!(
            "m=audio {} RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 sprop-stereo={}\r\n",
            a.to.port().wrapping_add(2),
            u8::from(m.stereo)
        )
    };
    let sdp = format!(
        "v=0\r\no=- 0 0 IN IP4 {ip}\r\ns=rts rtp-send\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=video {port} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
         a=fmtp:96 packetization-mode=1;profile-level-id={plid};sprop-parameter-sets={sprop}\r\n{audio_sdp}",
        ip = a.to.ip(),
        port = a.to.port(),
        plid = pk.profile_level_id().unwrap_or_else(|| "42e01f".into()),
        sprop = pk.sprop_parameter_sets().unwrap_or_default(),
    );
    std::fs::write(&a.sdp, sdp).with_context(|| format!("writing {}", a.sdp.display()))?;
    eprintln!(
        "wrote {}; {} video frames and {} Opus packets to send",
        a.sdp.display(),
        m.frames.len(),
        m.opus.len()
    );
    std::thread::sleep(a.start_delay);

    let sock = UdpSocket::bind("0.0.0.0:0")?;
    let port = |n: u16| SocketAddr::new(a.to.ip(), a.to.port().wrapping_add(n));
    let mut reporter = rtcp::Reporter::new(
        ssrc,
        h264::CLOCK_RATE,
        "rtp-send@rts",
        2000.0,
        Duration::from_secs(1),
    );
    let mut audio_reporter = rtcp::Reporter::new(
        audio_ssrc,
        opus::CLOCK_RATE,
        "rtp-send@rts",
        500.0,
        Duration::from_secs(1),
    );
    // One timeline for both streams, in µs from the first video frame.
    let first_ms = u64::from(m.frames.first().map_or(0, |f| f.ms));
    let mut schedule: Vec<(u64, Option<usize>, Option<usize>)> = m
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| ((u64::from(f.ms) - first_ms) * 1000, Some(i), None))
        .chain(m.opus.iter().enumerate().map(|(i, p)| {
            let us = (p.timestamp * 1000 / 48).saturating_sub(first_ms * 1000);
            (us, None, Some(i))
        }))
        .collect();
    schedule.sort_by_key(|e| e.0);

    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut packets = Vec::new();
    let mut wire = BytesMut::with_capacity(1500);
    let (mut sent_frames, mut sent_packets, mut sent_audio) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    for (due_us, video, audio) in schedule {
        let due = start + Duration::from_micros(due_us);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let now = Instant::now();
        if let Some(f) = video.and_then(|i| m.frames.get(i)) {
            packets.clear();
            pk.packetize(
                &f.au,
                h264::Format::Avcc { length_size },
                f.ms.wrapping_mul(90),
                &mut packets,
            )?;
            for p in &packets {
                wire.clear();
                p.encode(&Extensions::new(), &mut wire);
                sock.send_to(&wire, a.to)?;
                reporter.on_rtp_sent(now, p);
                sent_packets += 1;
            }
            sent_frames += u64::from(!packets.is_empty());
        }
        if let Some(o) = audio.and_then(|i| m.opus.get(i)) {
            let p = opk.packetize(o.data.clone(), o.timestamp as u32);
            wire.clear();
            p.encode(&Extensions::new(), &mut wire);
            sock.send_to(&wire, port(2))?;
            audio_reporter.on_rtp_sent(now, &p);
            sent_audio += 1;
        }
        if let Some(sr) = reporter.handle_timeout(now, SystemTime::now(), random())? {
            sock.send_to(&sr, port(1))?;
        }
        if let Some(sr) = audio_reporter.handle_timeout(now, SystemTime::now(), random())? {
            sock.send_to(&sr, port(3))?;
        }
    }
    // RTCP BYE (RFC 3550 6.6): receivers such as ffmpeg end the stream on
    // it. Give the last frame one frame interval to be read first, as a live
    // source would (the BYE travels on another socket).
    std::thread::sleep(Duration::from_millis(100));
    sock.send_to(&reporter.bye(Instant::now(), SystemTime::now())?, port(1))?;
    if sent_audio > 0 {
        sock.send_to(
            &audio_reporter.bye(Instant::now(), SystemTime::now())?,
            port(3),
        )?;
    }
    println!("sent {sent_frames} video frames, {sent_packets} packets, {sent_audio} audio frames");
    Ok(())
}
