//! Glass-to-glass latency probe: publishes a generated H.264 stream over
//! RTMP whose every access unit carries its wall-clock send time (the
//! `rts-wallclock-v1` SEI, `rts_h264::sei::build_wallclock`), plays it back
//! over WHEP (our WebRTC client, `rts_webrtc::Peer::offer`) or HTTP-FLV,
//! and prints one JSON line with time to first frame and the latency
//! distribution (receive wall time minus the SEI's send time, per frame):
//! `latency_ms` over every frame, `steady_latency_ms` over the frames
//! received 1 s or more after the first (without the start-up burst of
//! frames sent while the viewer connected). The clocks are the same
//! machine's when publisher and player are one process, as here.
//!
//! ```text
//! cargo run --release -p rts-server --example rts-probe -- \
//!     --publish rtmp://127.0.0.1:1935/live/probe \
//!     --play http://127.0.0.1:8080/live/probe.flv   # or .../live/probe/whep
//!     [--duration 10] [--fps 30] [--size 640x360] [--gop-seconds 2] \
//!     [--join-after 0] [--no-audio]
//! ```
//!
//! Video: openh264, constrained baseline, no B-frames, a keyframe every
//! `--gop-seconds`. Audio: real AAC-LC (48 kHz stereo, made once by
//! FFmpeg, `examples/data/`), looped, with a tone burst every second. Over
//! WHEP the probe decodes the Opus it gets, finds the bursts and reports
//! `audio.latency_ms` (per Opus packet: its arrival minus the send time
//! of the AAC frames its samples came from, the bursts tying the two
//! timelines together) and
//! `audio.av_offset_ms`: each burst's NTP time through the audio track's
//! sender reports minus the NTP time of the same media time through the
//! video track's, which is how far apart a receiver that lip-syncs on
//! sender reports plays them (0 is perfect). `--join-after S` starts the
//! viewer S seconds after the first frame was sent, e.g. in the middle of
//! a 10 s GOP, for a late joiner's `first_frame_ms`.
//!
//! Every picture also carries its capture time as a barcode in its top 16
//! rows (32 blocks, the low 32 bits of the Unix time in ms), which survives
//! a server that decodes and re-encodes: `tests/browser/whep_barcode.js`
//! reads it from what Chromium displays, for any WHEP server.
//!
//! `--publish http://…/whip` publishes the same stamped video over WHIP
//! instead (rts-webrtc's client side; video only, no audio figures), for
//! the forwarding path WHIP in, WebRTC out.
//!
//! Without `--publish` the probe only plays (e.g. `whep-testsrc`), with no
//! latency samples unless the stream carries the SEI. Progress goes to
//! stderr. Exit codes: 0 ok, 1 failure (connection, HTTP status, no frame
//! received), 2 bad arguments. Only `http://` play URLs (no TLS client
//! here).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use openh264::OpenH264API;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, Profile};
use openh264::formats::YUVBuffer;
use rts_flv::{AudioPacketType, AudioTagHeader};
use rts_flv::{AvcDecoderConfigurationRecord, Demuxer, FrameType, TagType, VideoPacketType};
use rts_flv::{VideoCodec, VideoTagHeader};
use rts_h264::nal::{Format, split};
use rts_h264::sei;
use rts_rtmp::session::{ClientEvent, ClientSession, Config as RtmpConfig, MediaKind as RtmpKind};
use rts_rtp::h264::{Depacketizer, Event as DepEvent};
use rts_rtp::receiver::H264Receiver;
use rts_webrtc::{Certificate, Codec, Config, Event, MediaKind, Peer, Role};

#[path = "support/probe_audio.rs"]
mod probe_audio;
#[path = "support/probe_whip.rs"]
mod probe_whip;
use probe_audio::{AacLoop, AudioReceiver, SyncTally};

const USAGE: &str =
    "usage: rts-probe [--publish RTMP_URL] --play URL [--duration S] [--fps N] [--size WxH]
                 [--gop-seconds S] [--join-after S] [--no-audio]
  --publish  rtmp://host[:port]/app/stream[?auth_key=...]  (omit to only play)
             http://host[:port]/app/stream/whip[?auth_key=...]  (WHIP, video only)
  --play     http://host[:port]/app/stream/whep[?auth_key=...]  (WebRTC, WHEP)
             http://host[:port]/app/stream.flv[?auth_key=...]   (HTTP-FLV)
  --duration seconds of publishing and playing (default 10, at most 3600)
  --fps      frames per second (default 30)
  --size     WIDTHxHEIGHT, even numbers (default 640x360)
  --gop-seconds  seconds between keyframes (default 2, at most 60)
  --join-after   seconds from the first frame sent to the play request (default 0)
  --no-audio     publish video only (default: AAC audio beside the video)";

#[derive(Clone)]
struct Args {
    publish: Option<String>,
    play: String,
    duration: Duration,
    fps: u32,
    width: usize,
    height: usize,
    gop_seconds: f64,
    join_after: Duration,
    audio: bool,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut publish = None;
    let mut play = None;
    let mut duration = 10.0f64;
    let mut fps = 30u32;
    let (mut width, mut height) = (640usize, 360usize);
    let mut gop_seconds = 2.0f64;
    let mut join_after = 0.0f64;
    let mut audio = true;
    let mut p = lexopt::Parser::from_env();
    let val = |p: &mut lexopt::Parser, name: &str| -> Result<String, String> {
        p.value()
            .map_err(|e| format!("{name}: {e}"))?
            .into_string()
            .map_err(|_| format!("{name}: not UTF-8"))
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("publish") => publish = Some(val(&mut p, "--publish")?),
            Long("play") => play = Some(val(&mut p, "--play")?),
            Long("duration") => {
                duration = val(&mut p, "--duration")?
                    .parse()
                    .map_err(|_| "--duration: a number of seconds".to_owned())?
            }
            Long("fps") => {
                fps = val(&mut p, "--fps")?
                    .parse()
                    .map_err(|_| "--fps: a whole number".to_owned())?
            }
            Long("size") => {
                let s = val(&mut p, "--size")?;
                let (w, h) = s
                    .split_once('x')
                    .ok_or("--size: WIDTHxHEIGHT, e.g. 640x360")?;
                width = w.parse().map_err(|_| "--size: bad width")?;
                height = h.parse().map_err(|_| "--size: bad height")?;
            }
            Long("gop-seconds") => {
                gop_seconds = val(&mut p, "--gop-seconds")?
                    .parse()
                    .map_err(|_| "--gop-seconds: a number of seconds".to_owned())?
            }
            Long("join-after") => {
                join_after = val(&mut p, "--join-after")?
                    .parse()
                    .map_err(|_| "--join-after: a number of seconds".to_owned())?
            }
            Long("no-audio") => audio = false,
            Long("help") | Short('h') => return Err(String::new()),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    let play = play.ok_or("--play is required")?;
    if !(0.5..=3600.0).contains(&duration) {
        return Err("--duration: between 0.5 and 3600 seconds".into());
    }
    if !(1..=120).contains(&fps) {
        return Err("--fps: between 1 and 120".into());
    }
    if !(0.1..=60.0).contains(&gop_seconds) {
        return Err("--gop-seconds: between 0.1 and 60".into());
    }
    if !(0.0..=600.0).contains(&join_after) {
        return Err("--join-after: between 0 and 600 seconds".into());
    }
    if width < 64 || height < 64 || width > 3840 || height > 2160 || width % 2 + height % 2 != 0 {
        return Err("--size: even numbers from 64x64 to 3840x2160".into());
    }
    if let Some(u) = &publish
        && !u.starts_with("rtmp://")
        && !(u.starts_with("http://") && u.split('?').next().is_some_and(|p| p.ends_with("/whip")))
    {
        return Err("--publish: an rtmp:// URL, or an http:// URL ending in /whip".into());
    }
    if !play.starts_with("http://") {
        return Err(if play.starts_with("https://") {
            "--play: https is not supported by rts-probe; use the server's http:// listener".into()
        } else {
            "--play: an http:// URL ending in /whep or .flv".into()
        });
    }
    Ok(Args {
        publish,
        play,
        duration: Duration::from_secs_f64(duration),
        fps,
        width,
        height,
        gop_seconds,
        join_after: Duration::from_secs_f64(join_after),
        audio,
    })
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What the publisher shares with the player.
#[derive(Default)]
struct Shared {
    started: AtomicBool,
    done: AtomicBool,
    frames_sent: AtomicU64,
    failed: std::sync::Mutex<Option<String>>,
    /// Send time (the SEI's stamp) -> FLV timestamp, of every video frame.
    video_sent: std::sync::Mutex<HashMap<u64, u32>>,
    /// Send time of every AAC frame, by frame number.
    audio_sent: std::sync::Mutex<Vec<u64>>,
}

// ---------------------------------------------------------------- publish

/// I420 test pattern: colour bars and a box that moves every frame.
fn pattern(n: u32, w: usize, h: usize) -> YUVBuffer {
    let mut yuv = vec![128u8; w * h * 3 / 2];
    let bars = [235u8, 210, 170, 145, 106, 81, 41, 16];
    let box_x = (n as usize * 8) % (w - 32);
    let box_y = (h / 2 - 16 + (n as usize * 3) % 32).min(h - 32);
    for y in 0..h {
        for x in 0..w {
            let in_box = (box_x..box_x + 32).contains(&x) && (box_y..box_y + 32).contains(&y);
            yuv[y * w + x] = if in_box { 250 } else { bars[x * 8 / w] };
        }
    }
    barcode(&mut yuv, w, (wall_us() / 1000) as u32);
    YUVBuffer::from_vec(yuv, w, h)
}

/// Bits of the barcode: the low 32 bits of the capture time in Unix ms.
const BARCODE_BITS: usize = 32;
/// Its height in pixels (the top rows of the picture).
const BARCODE_ROWS: usize = 16;

/// Paints the capture time into the top rows as a barcode that survives
/// any re-encoding: a white guard block, then 32 blocks, most significant
/// bit first, white for 1 and black for 0, each `w / 34` pixels wide.
/// What a viewer reads from the displayed picture measures glass to glass
/// through any server, also one that decodes and re-encodes (the SEI does
/// not survive that). `tests/browser/whep_barcode.js` reads it.
fn barcode(luma: &mut [u8], w: usize, ms: u32) {
    let block = w / (BARCODE_BITS + 2);
    for y in 0..BARCODE_ROWS {
        for x in 0..w {
            let i = x / block;
            let v = match i {
                0 => 235,
                1..=BARCODE_BITS if ms >> (BARCODE_BITS - i) & 1 == 1 => 235,
                _ => 16,
            };
            luma[y * w + x] = v;
        }
    }
}

/// `rtmp://host:port/app/stream?q` -> (address, tcUrl, app, stream?q).
fn split_rtmp_url(url: &str) -> anyhow::Result<(String, String, String, String)> {
    let rest = url.strip_prefix("rtmp://").context("not an rtmp:// URL")?;
    let (authority, path) = rest.split_once('/').context("no /app/stream in the URL")?;
    let (app, stream) = path.split_once('/').context("the URL needs /app/stream")?;
    if app.is_empty() || stream.is_empty() {
        bail!("the URL needs /app/stream");
    }
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:1935")
    };
    Ok((
        addr,
        format!("rtmp://{authority}/{app}"),
        app.into(),
        stream.into(),
    ))
}

/// The stamped test pattern, encoded.
struct VideoSource {
    encoder: Encoder,
    sent_header: bool,
}

/// One encoded frame, stamped.
struct Encoded {
    /// NAL units in order, the wall-clock SEI before the first slice.
    nals: Vec<Bytes>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    keyframe: bool,
    /// Media time in ms.
    ts: u32,
}

impl VideoSource {
    fn new(args: &Args) -> anyhow::Result<VideoSource> {
        let gop_frames = ((args.gop_seconds * f64::from(args.fps)).round() as u32).max(1);
        let cfg = EncoderConfig::new()
            .bitrate(BitRate::from_bps(1_000_000))
            .max_frame_rate(FrameRate::from_hz(args.fps as f32))
            .profile(Profile::Baseline)
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(gop_frames));
        Ok(VideoSource {
            encoder: Encoder::with_api_config(OpenH264API::from_source(), cfg)?,
            sent_header: false,
        })
    }

    /// Encodes frame `n` and stamps it with the wall-clock SEI, as late as
    /// possible (right before it goes out); records the send time.
    fn encode(&mut self, n: u32, args: &Args, shared: &Shared) -> anyhow::Result<Encoded> {
        let bs = self.encoder.encode(&pattern(n, args.width, args.height))?;
        let au = Bytes::from(bs.to_vec());
        let mut nals = Vec::new();
        for nal in split(&au, Format::AnnexB)? {
            nals.push(nal?.bytes().clone());
        }
        let mut sps = None;
        let mut pps = None;
        let mut keyframe = false;
        for nal in &mut nals {
            match nal.first().map(|b| b & 0x1f) {
                Some(7) => {
                    // Constrained baseline (constraint_set0..2): profile-level-id 42e0xx.
                    let mut v = nal.to_vec();
                    if let Some(b) = v.get_mut(2) {
                        *b |= 0xe0;
                    }
                    *nal = Bytes::from(v);
                    sps = Some(nal.clone());
                }
                Some(8) => pps = Some(nal.clone()),
                Some(5) => keyframe = true,
                _ => {}
            }
        }
        let sent_us = wall_us();
        let first_vcl = nals
            .iter()
            .position(|n| matches!(n.first().map(|b| b & 0x1f), Some(1..=5)))
            .unwrap_or(nals.len());
        nals.insert(first_vcl, Bytes::from(sei::build_wallclock(sent_us)));
        let ts = (u64::from(n) * 1000 / u64::from(args.fps)) as u32;
        if let Ok(mut m) = shared.video_sent.lock() {
            m.insert(sent_us, ts);
        }
        shared.frames_sent.fetch_add(1, Ordering::Relaxed);
        shared.started.store(true, Ordering::Relaxed);
        Ok(Encoded {
            nals,
            sps,
            pps,
            keyframe,
            ts,
        })
    }

    /// Encodes frame `n` and queues it on the RTMP session (after the
    /// sequence header, the first time); false when the session no longer
    /// takes media.
    fn send(
        &mut self,
        n: u32,
        args: &Args,
        client: &mut ClientSession,
        shared: &Shared,
    ) -> anyhow::Result<bool> {
        let f = self.encode(n, args, shared)?;
        if !self.sent_header {
            let (Some(sps), Some(pps)) = (f.sps, f.pps) else {
                return Ok(true); // the first output always has them
            };
            let record = AvcDecoderConfigurationRecord::from_parameter_sets(sps, vec![pps])?;
            let mut body = BytesMut::new();
            VideoTagHeader::avc(FrameType::Key, VideoPacketType::SequenceStart, 0)
                .encode(&mut body)?;
            record.encode(&mut body)?;
            client.send_media(RtmpKind::Video, 0, body.freeze());
            self.sent_header = true;
        }
        let mut body = BytesMut::new();
        let ft = if f.keyframe {
            FrameType::Key
        } else {
            FrameType::Inter
        };
        VideoTagHeader::avc(ft, VideoPacketType::CodedFrames, 0).encode(&mut body)?;
        for nal in &f.nals {
            body.put_u32(nal.len() as u32);
            body.put_slice(nal);
        }
        Ok(client.send_media(RtmpKind::Video, f.ts, body.freeze()))
    }
}

fn publish(url: &str, args: &Args, shared: &Shared) -> anyhow::Result<()> {
    let (addr, tc_url, app, stream) = split_rtmp_url(url)?;
    let mut conn = TcpStream::connect(&addr).with_context(|| format!("connect to {addr}"))?;
    conn.set_nodelay(true)?;
    let mut random = [0u8; 1528];
    getrandom::fill(&mut random).map_err(|e| anyhow!("randomness: {e}"))?;
    let mut client = ClientSession::new(RtmpConfig::default(), &tc_url, &app, &random);
    client.publish(&stream);
    let mut buf = vec![0u8; 65536];
    // Reads until `until`, answering the server; returns on PublishStarted
    // when `want_start`.
    let mut pump = |client: &mut ClientSession,
                    conn: &mut TcpStream,
                    until: Instant,
                    want_start: bool|
     -> anyhow::Result<bool> {
        loop {
            while let Some(b) = client.poll_transmit() {
                conn.write_all(&b).context("rtmp write")?;
            }
            let mut started = false;
            while let Some(ev) = client.poll_event() {
                match ev {
                    ClientEvent::PublishStarted { .. } => started = true,
                    ClientEvent::Error(e) => bail!("rtmp publish refused: {e}"),
                    ClientEvent::Closed => bail!("rtmp session closed by the server"),
                    _ => {}
                }
            }
            if started && want_start {
                return Ok(true);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            conn.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            match conn.read(&mut buf) {
                Ok(0) => bail!("the rtmp server closed the connection"),
                Ok(n) => client.handle_input(Instant::now(), &buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("rtmp read"),
            }
        }
    };
    if !pump(
        &mut client,
        &mut conn,
        Instant::now() + Duration::from_secs(10),
        true,
    )? {
        bail!("rtmp publish did not start within 10 s");
    }
    eprintln!("rts-probe: publishing {url}");

    let mut video = VideoSource::new(args)?;
    let audio = if args.audio {
        let aac = AacLoop::load()?;
        let mut body = BytesMut::new();
        AudioTagHeader::aac(AudioPacketType::SequenceStart).encode(&mut body)?;
        body.put_slice(&aac.asc);
        client.send_media(RtmpKind::Audio, 0, body.freeze());
        Some(aac)
    } else {
        None
    };
    let start = Instant::now();
    let total_video = (args.duration.as_secs_f64() * f64::from(args.fps)).ceil() as u32;
    let total_audio = (args.duration.as_secs_f64() * probe_audio::RATE as f64
        / probe_audio::FRAME as f64)
        .ceil() as u64;
    let (mut n, mut i) = (0u32, 0u64);
    loop {
        // The next video frame or AAC frame, whichever is due first.
        let video_due = (n < total_video).then(|| start + Duration::from_secs(1) * n / args.fps);
        let audio_due = audio.as_ref().filter(|_| i < total_audio).map(|_| {
            start + Duration::from_micros(i * probe_audio::FRAME * 1_000_000 / probe_audio::RATE)
        });
        let (due, is_audio) = match (video_due, audio_due) {
            (None, None) => break,
            (Some(v), Some(a)) if a < v => (a, true),
            (Some(v), _) => (v, false),
            (None, Some(a)) => (a, true),
        };
        pump(&mut client, &mut conn, due, false)?;
        let sent = if let (true, Some(aac)) = (is_audio, &audio) {
            let mut body = BytesMut::new();
            AudioTagHeader::aac(AudioPacketType::CodedFrames).encode(&mut body)?;
            body.put_slice(&aac.frame(i));
            let ok = client.send_media(RtmpKind::Audio, AacLoop::ts_ms(i), body.freeze());
            if let Ok(mut s) = shared.audio_sent.lock() {
                s.push(wall_us());
            }
            i += 1;
            ok
        } else {
            let ok = video.send(n, args, &mut client, shared)?;
            n += 1;
            ok
        };
        if !sent {
            bail!("the rtmp session stopped accepting media");
        }
        while let Some(b) = client.poll_transmit() {
            conn.write_all(&b).context("rtmp write")?;
        }
    }
    client.close(Some(stream.split('?').next().unwrap_or(&stream)));
    while let Some(b) = client.poll_transmit() {
        let _ = conn.write_all(&b);
    }
    Ok(())
}

// ---------------------------------------------------------------- play

#[derive(Default)]
struct Tally {
    frames: u64,
    /// Frames whose first slice is a B slice (slice_type 1 or 6).
    b_frames: u64,
    audio_packets: u64,
    first_frame: Option<Duration>,
    latencies_ms: Vec<f64>,
    /// Latencies of frames received 1 s or more after the first one: the
    /// steady state, without the start-up burst (frames sent while the
    /// viewer connected, delivered from the server's cache).
    steady_ms: Vec<f64>,
    /// Over WHEP: the Opus decoded and its bursts found.
    audio: Option<AudioReceiver>,
    /// Over WHEP: both tracks' RTP times and sender reports.
    sync: SyncTally,
}

impl Tally {
    fn frame(&mut self, play_start: Instant, sent_us: Option<u64>) {
        let now_us = wall_us();
        self.frames += 1;
        if self.first_frame.is_none() {
            self.first_frame = Some(play_start.elapsed());
            eprintln!("rts-probe: first frame after {:?}", play_start.elapsed());
        }
        if let Some(sent) = sent_us {
            let ms = (now_us as f64 - sent as f64) / 1000.0;
            self.latencies_ms.push(ms);
            if self
                .first_frame
                .is_some_and(|f| play_start.elapsed() >= f + Duration::from_secs(1))
            {
                self.steady_ms.push(ms);
            }
        }
    }
}

fn wallclock_of(nals: &[Bytes]) -> Option<u64> {
    nals.iter()
        .filter(|n| n.first().map(|b| b & 0x1f) == Some(6))
        .find_map(|n| sei::parse_wallclock(n))
}

/// Whether the access unit's first slice is a B slice: `slice_type` is the
/// second ue(v) of the slice header (H.264 7.3.3), 1 or 6 for B.
fn is_b_frame(nals: &[Bytes]) -> bool {
    nals.iter()
        .find(|n| n.first().is_some_and(|b| matches!(b & 0x1f, 1 | 5)))
        .is_some_and(|n| {
            let rbsp = rts_h264::nal::unescape(n.get(1..).unwrap_or_default());
            let mut r = rts_h264::bits::BitReader::new(&rbsp);
            r.ue().is_ok() && r.ue().is_ok_and(|t| t % 5 == 1)
        })
}

impl Tally {
    fn access_unit(&mut self, play_start: Instant, nals: &[Bytes]) {
        if is_b_frame(nals) {
            self.b_frames += 1;
        }
        self.frame(play_start, wallclock_of(nals));
    }
}

type HttpResponse = (http::StatusCode, http::HeaderMap, hyper::body::Incoming);

async fn http_request(
    method: http::Method,
    url: &str,
    content_type: Option<&str>,
    body: String,
) -> anyhow::Result<HttpResponse> {
    let uri: http::Uri = url.parse().context("bad URL")?;
    let host = uri.host().context("URL without host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| anyhow!("connect to {host}:{port} timed out"))?
    .with_context(|| format!("connect to {host}:{port}"))?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(
            http::header::HOST,
            uri.authority().map(|a| a.as_str()).unwrap_or(""),
        );
    if let Some(ct) = content_type {
        req = req.header(http::header::CONTENT_TYPE, ct);
    }
    let req = req.body(Full::new(Bytes::from(body)))?;
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .map_err(|_| anyhow!("no HTTP response within 10 s"))??;
    let (parts, body) = resp.into_parts();
    Ok((parts.status, parts.headers, body))
}

async fn error_body(status: http::StatusCode, body: hyper::body::Incoming) -> anyhow::Error {
    let text = tokio::time::timeout(Duration::from_secs(2), body.collect())
        .await
        .ok()
        .and_then(|r| r.ok())
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
        .unwrap_or_default();
    anyhow!("HTTP {status}: {text}")
}

async fn play_flv(url: &str, until: PlayUntil<'_>, tally: &mut Tally) -> anyhow::Result<()> {
    let start = Instant::now();
    let (status, _, mut body) = http_request(http::Method::GET, url, None, String::new()).await?;
    if status != http::StatusCode::OK {
        return Err(error_body(status, body).await);
    }
    eprintln!("rts-probe: playing {url} (HTTP-FLV)");
    let mut demux = Demuxer::new();
    let mut buf = BytesMut::new();
    let mut length_size = 4u8;
    while !until.over(tally) {
        let frame = match tokio::time::timeout(Duration::from_millis(100), body.frame()).await {
            Err(_) => continue,
            Ok(None) => break,
            Ok(Some(f)) => f.context("flv body")?,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(tag) = demux.decode(&mut buf).context("flv stream")? {
            if tag.tag_type != TagType::Video {
                continue;
            }
            let (h, rest) = VideoTagHeader::parse(&tag.data).context("flv video tag")?;
            if h.codec != VideoCodec::Avc {
                continue;
            }
            if h.is_sequence_header() {
                let rec = AvcDecoderConfigurationRecord::parse(&rest)?;
                length_size = rec.nal_length_size();
                continue;
            }
            if h.packet_type != VideoPacketType::CodedFrames {
                continue;
            }
            let mut nals = Vec::new();
            for n in split(&rest, Format::Avcc { length_size })? {
                nals.push(n?.bytes().clone());
            }
            tally.access_unit(start, &nals);
        }
    }
    Ok(())
}

/// When playing stops: the deadline, or the publisher is done and every
/// frame it sent arrived (or a grace second passed).
struct PlayUntil<'a> {
    deadline: Instant,
    shared: Option<&'a Shared>,
    done_at: std::cell::Cell<Option<Instant>>,
}

impl PlayUntil<'_> {
    fn over(&self, tally: &Tally) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return true;
        }
        let Some(shared) = self.shared else {
            return false;
        };
        if !shared.done.load(Ordering::Relaxed) {
            return false;
        }
        if tally.frames >= shared.frames_sent.load(Ordering::Relaxed) {
            return true;
        }
        let done_at = self.done_at.get().unwrap_or(now);
        self.done_at.set(Some(done_at));
        now.saturating_duration_since(done_at) > Duration::from_secs(1)
    }
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = vec![0u8; len];
    let _ = getrandom::fill(&mut raw);
    raw.iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

async fn play_whep(url: &str, until: PlayUntil<'_>, tally: &mut Tally) -> anyhow::Result<()> {
    let start = Instant::now();
    let uri: http::Uri = url.parse().context("bad URL")?;
    let host = uri.host().context("URL without host")?;
    let server = (host, uri.port_u16().unwrap_or(80))
        .to_socket_addrs()?
        .next()
        .context("the host has no address")?;
    // The local address that routes to the server is our host candidate.
    let probe = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    probe.connect(server)?;
    let socket = UdpSocket::bind(SocketAddr::new(probe.local_addr()?.ip(), 0))?;
    // A late joiner gets the GOP so far in one burst, more than Linux's
    // default 208 KiB (Chromium took it without loss; capped by
    // net.core.rmem_max).
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
    let local = socket.local_addr()?;
    let config = Config {
        local_addr: local,
        candidates: vec![local],
        certificate: Certificate::generate()?,
        ice_ufrag: random_token(8),
        ice_pwd: random_token(24),
        video_ssrc: 1,
        audio_ssrc: 2,
        idle_timeout: Duration::from_secs(10),
        stats_interval: Duration::from_secs(1),
        tcp_candidates: Vec::new(),
    };
    let (mut peer, offer) = Peer::offer(Instant::now(), Role::Publisher, &config)?;
    let (status, headers, body) =
        http_request(http::Method::POST, url, Some("application/sdp"), offer).await?;
    if status != http::StatusCode::CREATED {
        return Err(error_body(status, body).await);
    }
    let answer = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .map_err(|_| anyhow!("the answer body did not arrive"))??
        .to_bytes();
    let answer = String::from_utf8(answer.to_vec()).context("answer is not UTF-8")?;
    peer.accept_answer(Instant::now(), &answer)?;
    let location = headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    eprintln!("rts-probe: playing {url} (WHEP, {local})");

    // The peer loop is blocking UDP on this thread (the runtime's other
    // workers keep hyper's connection task going).
    let result =
        tokio::task::block_in_place(|| whep_loop(&mut peer, &socket, start, &until, tally));
    if let Some(loc) = location {
        let del = if loc.starts_with("http") {
            loc
        } else {
            format!(
                "http://{}{loc}",
                uri.authority().map(|a| a.as_str()).unwrap_or("")
            )
        };
        let _ = http_request(http::Method::DELETE, &del, None, String::new()).await;
    }
    result
}

fn whep_loop(
    peer: &mut Peer,
    socket: &UdpSocket,
    start: Instant,
    until: &PlayUntil<'_>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    // A reorder buffer (100 ms at most for a missing packet, e.g. a NACKed
    // one) in front of the depacketizer, as a player has.
    let mut video = H264Receiver::new(
        1024,
        Duration::from_millis(100),
        Depacketizer::DEFAULT_MAX_ACCESS_UNIT,
    );
    let mut buf = vec![0u8; 2048];
    let mut connected = false;
    let connect_deadline = Instant::now() + Duration::from_secs(10);
    while !until.over(tally) {
        while let Some(t) = peer.poll_transmit() {
            let _ = socket.send_to(&t.contents, t.destination);
        }
        while let Some(ev) = peer.poll_event() {
            match ev {
                Event::Connected => {
                    connected = true;
                    eprintln!("rts-probe: ICE and DTLS up after {:?}", start.elapsed());
                }
                // The server ended the stream (its publisher left): done.
                Event::Disconnected { reason } if reason == rts_webrtc::ENDED_BY_REMOTE => {
                    eprintln!("rts-probe: the server ended the stream");
                    return Ok(());
                }
                Event::Disconnected { reason } => bail!("webrtc session ended: {reason}"),
                Event::Rtp {
                    kind: MediaKind::Video,
                    codec: Codec::H264,
                    packet,
                } => {
                    tally.sync.video_ssrc.get_or_insert(packet.header.ssrc);
                    video.handle_packet(Instant::now(), packet);
                }
                Event::Rtp {
                    kind: MediaKind::Audio,
                    codec: Codec::Opus,
                    packet,
                } => {
                    tally.audio_packets += 1;
                    tally.sync.audio_ssrc.get_or_insert(packet.header.ssrc);
                    if let Some(a) = tally.audio.as_mut() {
                        a.packet(packet.header.timestamp, &packet.payload, wall_us());
                    }
                }
                Event::SenderReport {
                    ssrc,
                    ntp_time,
                    rtp_time,
                } => tally.sync.report(ssrc, ntp_time, rtp_time),
                _ => {}
            }
        }
        video.handle_timeout(Instant::now());
        while let Some(e) = video.poll_event() {
            match e {
                DepEvent::AccessUnit(au) => {
                    let media_ms = wallclock_of(&au.nals).and_then(|sent| {
                        let shared = until.shared?;
                        shared.video_sent.lock().ok()?.get(&sent).copied()
                    });
                    if let Some(ms) = media_ms {
                        tally.sync.video_frame(au.timestamp, ms, wall_us());
                    }
                    tally.access_unit(start, &au.nals);
                }
                DepEvent::KeyframeNeeded => {
                    let _ = peer.request_keyframe(Instant::now());
                }
            }
        }
        if !connected && Instant::now() > connect_deadline {
            bail!("ICE/DTLS did not complete within 10 s (UDP to the server blocked?)");
        }
        let now = Instant::now();
        let wait = [peer.poll_timeout(), video.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(50))
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let _ = peer.handle_receive(Instant::now(), from, &buf[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e).context("udp receive"),
        }
        let now = Instant::now();
        if peer.poll_timeout().is_some_and(|t| t <= now) {
            let _ = peer.handle_timeout(now);
        }
    }
    peer.close();
    while let Some(t) = peer.poll_transmit() {
        let _ = socket.send_to(&t.contents, t.destination);
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn run(args: Args) -> anyhow::Result<bool> {
    let path = args.play.split('?').next().unwrap_or("");
    let whep = if path.ends_with("/whep") {
        true
    } else if path.ends_with(".flv") {
        false
    } else {
        bail!("--play: the URL path must end in /whep (WebRTC) or .flv (HTTP-FLV)");
    };
    let shared = Arc::new(Shared::default());
    let publisher = args.publish.clone().map(|url| {
        let shared = shared.clone();
        let args = Args {
            publish: None,
            play: String::new(),
            ..args.clone()
        };
        std::thread::spawn(move || {
            let published = if url.starts_with("rtmp://") {
                publish(&url, &args, &shared)
            } else {
                probe_whip::publish(&url, &args, &shared)
            };
            if let Err(e) = published
                && let Ok(mut f) = shared.failed.lock()
            {
                *f = Some(format!("publish: {e:#}"));
            }
            shared.done.store(true, Ordering::Relaxed);
        })
    });
    if publisher.is_some() {
        // Play once the first frame is out (a WHEP stream must exist).
        let deadline = Instant::now() + Duration::from_secs(15);
        while !shared.started.load(Ordering::Relaxed) {
            if shared.done.load(Ordering::Relaxed) || Instant::now() > deadline {
                let why = shared.failed.lock().ok().and_then(|f| f.clone());
                bail!(why.unwrap_or_else(|| "publishing did not start within 15 s".into()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // A late joiner (e.g. the middle of a long GOP).
        std::thread::sleep(args.join_after);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut tally = Tally::default();
    let rtmp_publish = args
        .publish
        .as_deref()
        .is_some_and(|u| u.starts_with("rtmp://"));
    if whep && args.audio && rtmp_publish {
        tally.audio = Some(AudioReceiver::new()?);
    }
    let until = PlayUntil {
        deadline: Instant::now()
            + args.duration
            + if args.publish.is_some() {
                Duration::from_secs(3)
            } else {
                Duration::ZERO
            },
        shared: args.publish.as_ref().map(|_| &*shared),
        done_at: Default::default(),
    };
    let played = rt.block_on(async {
        if whep {
            play_whep(&args.play, until, &mut tally).await
        } else {
            play_flv(&args.play, until, &mut tally).await
        }
    });
    shared.done.store(true, Ordering::Relaxed);
    if let Some(p) = publisher {
        let _ = p.join();
    }
    played.with_context(|| format!("play {}", args.play))?;
    if let Some(e) = shared.failed.lock().ok().and_then(|f| f.clone()) {
        bail!(e);
    }
    let summary = |v: &[f64]| {
        let mut lat = v.to_vec();
        lat.sort_by(f64::total_cmp);
        serde_json::json!({
            "min": round2(lat.first().copied().unwrap_or(0.0)),
            "p50": round2(percentile(&lat, 50.0)),
            "p95": round2(percentile(&lat, 95.0)),
            "p99": round2(percentile(&lat, 99.0)),
            "max": round2(lat.last().copied().unwrap_or(0.0)),
        })
    };
    let audio = match (&tally.audio, args.audio) {
        (Some(rx), true) => {
            let aac = AacLoop::load()?;
            let sent = shared
                .audio_sent
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default();
            let f = tally.sync.audio(&aac, rx, &sent);
            serde_json::json!({
                "packets": rx.packets,
                "decode_errors": rx.decode_errors,
                "bursts": f.bursts,
                "latency_ms": f.latency.as_deref().map(&summary),
                "av_offset_ms": f.av_offset.as_deref().map(&summary),
                "audio_behind_video_ms": f.audio_behind_video.map(round2),
            })
        }
        _ => serde_json::Value::Null,
    };
    let out = serde_json::json!({
        "play": if whep { "whep" } else { "flv" },
        "frames_sent": shared.frames_sent.load(Ordering::Relaxed),
        "frames_received": tally.frames,
        "b_frames": tally.b_frames,
        "audio_packets": tally.audio_packets,
        "first_frame_ms": tally.first_frame.map(|d| round2(d.as_secs_f64() * 1000.0)),
        "latency_ms": summary(&tally.latencies_ms),
        "samples": tally.latencies_ms.len(),
        "steady_latency_ms": summary(&tally.steady_ms),
        "steady_samples": tally.steady_ms.len(),
        "audio": audio,
    });
    println!("{out}");
    if tally.frames == 0 {
        eprintln!("rts-probe: no frame received");
        return Ok(false);
    }
    Ok(true)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("rts-probe: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    match run(args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("rts-probe: {e:#}");
            std::process::exit(1);
        }
    }
}
