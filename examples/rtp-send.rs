//! Sends the H.264 video of an FLV file as RTP over UDP in real time and
//! writes an SDP file a standard receiver (ffmpeg, VLC, GStreamer) opens:
//!
//! ```text
//! cargo run --example rtp-send IN.flv --to 127.0.0.1:PORT --sdp OUT.sdp [--start-delay MS]
//! ffmpeg -protocol_whitelist file,udp,rtp -i OUT.sdp ...
//! ```
//!
//! The video must have no B-frames (RTP timestamps are presentation times
//! and the packetizer sends in decoding order). Video goes to PORT with RTCP
//! sender reports to PORT+1. `--start-delay MS` waits that long after
//! writing the SDP before sending, so a receiver can be started first.
//! Audio is not sent: AAC to Opus (rts-audio) had not landed when this was
//! written. At the end an RTCP BYE goes to PORT+1 (receivers stop on it).
//! The last line on stdout is `sent N video frames, P packets`.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use rts::flv::bytes::{Bytes, BytesMut};
use rts::flv::{AvcDecoderConfigurationRecord, Demuxer, TagType, VideoTagHeader};
use rts::rtp::ext::Extensions;
use rts::rtp::{h264, rtcp};

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

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let data = std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    let mut buf = BytesMut::from(&data[..]);
    let mut demux = Demuxer::new();
    let mut config = None;
    let mut frames = Vec::new();
    while let Some(tag) = demux.decode_eof(&mut buf).context("bad FLV")? {
        if tag.tag_type != TagType::Video {
            continue;
        }
        let (h, payload) = VideoTagHeader::parse(&tag.data).context("bad video tag")?;
        if h.is_sequence_header() {
            config =
                Some(AvcDecoderConfigurationRecord::parse(&payload).context("bad AVC config")?);
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
    let config = config.context("no AVC sequence header: is the video H.264?")?;
    let length_size = u8::try_from(config.nal_length_size()).context("bad NAL length size")?;

    let ssrc = std::process::id().wrapping_mul(2_654_435_761);
    let mut pk = h264::Packetizer::new(h264::Config {
        ssrc,
        payload_type: 96,
        ..Default::default()
    })?;
    pk.set_parameter_sets(config.sps.clone(), config.pps.clone());
    let sdp = format!(
        "v=0\r\no=- 0 0 IN IP4 {ip}\r\ns=rts rtp-send\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=video {port} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
         a=fmtp:96 packetization-mode=1;profile-level-id={plid};sprop-parameter-sets={sprop}\r\n",
        ip = a.to.ip(),
        port = a.to.port(),
        plid = pk.profile_level_id().unwrap_or_else(|| "42e01f".into()),
        sprop = pk.sprop_parameter_sets().unwrap_or_default(),
    );
    std::fs::write(&a.sdp, sdp).with_context(|| format!("writing {}", a.sdp.display()))?;
    eprintln!(
        "wrote {}; {} video frames to send",
        a.sdp.display(),
        frames.len()
    );
    std::thread::sleep(a.start_delay);

    let sock = UdpSocket::bind("0.0.0.0:0")?;
    let rtcp_to = SocketAddr::new(a.to.ip(), a.to.port().wrapping_add(1));
    let mut reporter = rtcp::Reporter::new(
        ssrc,
        h264::CLOCK_RATE,
        "rtp-send@rts",
        2000.0,
        Duration::from_secs(1),
    );
    let mut packets = Vec::new();
    let mut wire = BytesMut::with_capacity(1500);
    let (mut sent_frames, mut sent_packets) = (0u64, 0u64);
    let first_ms = frames.first().map_or(0, |f| f.ms);
    let start = Instant::now();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for f in &frames {
        let due = start + Duration::from_millis(u64::from(f.ms.saturating_sub(first_ms)));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        packets.clear();
        pk.packetize(
            &f.au,
            h264::Format::Avcc { length_size },
            f.ms.wrapping_mul(90),
            &mut packets,
        )?;
        let now = Instant::now();
        for p in &packets {
            wire.clear();
            p.encode(&Extensions::new(), &mut wire);
            sock.send_to(&wire, a.to)?;
            reporter.on_rtp_sent(now, p);
            sent_packets += 1;
        }
        sent_frames += u64::from(!packets.is_empty());
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let random = (rng >> 11) as f64 / (1u64 << 53) as f64;
        if let Some(sr) = reporter.handle_timeout(now, SystemTime::now(), random)? {
            sock.send_to(&sr, rtcp_to)?;
        }
    }
    // RTCP BYE (RFC 3550 6.6): receivers such as ffmpeg end the stream on
    // it. Give the last frame one frame interval to be read first, as a
    // live source would (the BYE travels on another socket).
    std::thread::sleep(Duration::from_millis(100));
    let bye = reporter.bye(Instant::now(), SystemTime::now())?;
    sock.send_to(&bye, rtcp_to)?;
    println!("sent {sent_frames} video frames, {sent_packets} packets");
    Ok(())
}
