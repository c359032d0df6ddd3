//! WHEP test source: a moving test pattern (openh264, constrained baseline,
//! no B-frames) and a 440 Hz Opus tone at `/live/test/whep`, so a browser
//! can play with no other server.
//!
//! ```text
//! cargo run --example whep-testsrc -- --listen 127.0.0.1:8080 --udp 127.0.0.1:8000
//! ```
//! Prints `listening http=ADDR udp=ADDR` once ready.

#[path = "webrtc_support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use openh264::OpenH264API;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, Profile};
use openh264::formats::YUVBuffer;
use rts::rtp::{h264, opus};
use rts::webrtc::host::{HostEvent, Keyframes};
use rts::whip::{CreateError, Kind, ResourceId, Target};
use support::ExampleHost;

const WIDTH: usize = 640;
const HEIGHT: usize = 360;
const FPS: u32 = 30;

fn stream() -> Target {
    Target {
        kind: Kind::Whep,
        app: "live".into(),
        stream: "test".into(),
    }
}

struct TestSrc {
    keyframe: Arc<AtomicBool>,
    media: mpsc::Receiver<Media>,
}

impl support::App for TestSrc {
    fn admit(&mut self, _: &ExampleHost, target: &Target) -> Result<(), CreateError> {
        if *target == stream() {
            Ok(())
        } else {
            Err(CreateError::NotFound(format!(
                "{}/{}",
                target.app, target.stream
            )))
        }
    }

    fn on_event(&mut self, _: Instant, _: &mut ExampleHost, event: HostEvent<ResourceId, Target>) {
        match event {
            HostEvent::Connected { id, .. } => eprintln!("viewer {id} connected"),
            HostEvent::KeyframeNeeded { .. } => self.keyframe.store(true, Ordering::Relaxed),
            HostEvent::Closed { id, reason, .. } => eprintln!("viewer {id} disconnected: {reason}"),
            _ => {}
        }
    }

    fn tick(&mut self, now: Instant, host: &mut ExampleHost) {
        // Packetized once; the host fans out to every connected viewer.
        let target = stream();
        // The encoder makes an IDR when asked: new viewers and PLIs come as
        // KeyframeNeeded. Set before a viewer connects (the host applies the
        // policy at connection); a no-op once set.
        host.set_keyframes(&target, Keyframes::OnRequest);
        while let Ok(m) = self.media.try_recv() {
            match m {
                Media::Video(pkts, key) => host.send_video(now, &target, &pkts, key),
                Media::Audio(p) => host.send_audio(now, &target, &p),
            }
        }
    }
}

/// I420 frame: colour bars, a bright box moving across, a moving luma ramp.
fn pattern(n: u32) -> YUVBuffer {
    let (w, h) = (WIDTH, HEIGHT);
    let mut yuv = vec![0u8; w * h * 3 / 2];
    let bars: [(u8, u8, u8); 8] = [
        (235, 128, 128),
        (210, 16, 146),
        (170, 166, 16),
        (145, 54, 34),
        (106, 202, 222),
        (81, 90, 240),
        (41, 240, 110),
        (16, 128, 128),
    ];
    let box_x = (n as usize * 8) % (w - 64);
    let box_y = h / 2 - 32 + ((n as usize * 3) % 64);
    let (y_plane, uv) = yuv.split_at_mut(w * h);
    let (u_plane, v_plane) = uv.split_at_mut(w * h / 4);
    for y in 0..h {
        for x in 0..w {
            let bar = bars[x * 8 / w];
            let in_box = x >= box_x && x < box_x + 64 && y >= box_y && y < box_y + 64;
            let luma = if y > h * 3 / 4 {
                ((x + n as usize * 4) % 256) as u8
            } else if in_box {
                235
            } else {
                bar.0
            };
            y_plane[y * w + x] = luma;
            if y % 2 == 0 && x % 2 == 0 {
                let i = (y / 2) * (w / 2) + x / 2;
                let (u, v) = if in_box || y > h * 3 / 4 {
                    (128, 128)
                } else {
                    (bar.1, bar.2)
                };
                u_plane[i] = u;
                v_plane[i] = v;
            }
        }
    }
    YUVBuffer::from_vec(yuv, w, h)
}

enum Media {
    /// The packets of one access unit, and whether it is a keyframe.
    Video(Vec<rts::rtp::Packet>, bool),
    Audio(rts::rtp::Packet),
}

fn video_thread(
    tx: mpsc::SyncSender<Media>,
    keyframe: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let cfg = EncoderConfig::new()
        .bitrate(BitRate::from_bps(1_000_000))
        .max_frame_rate(FrameRate::from_hz(FPS as f32))
        .profile(Profile::Baseline)
        .skip_frames(false)
        .intra_frame_period(IntraFramePeriod::from_num_frames(FPS * 4));
    let mut enc = Encoder::with_api_config(OpenH264API::from_source(), cfg)?;
    let mut pk = h264::Packetizer::new(h264::Config {
        mtu: 1200,
        ..Default::default()
    })?;
    let start = Instant::now();
    let mut out = Vec::new();
    for n in 0u32.. {
        let due = start + Duration::from_secs(1) * n / FPS;
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        if keyframe.swap(false, Ordering::Relaxed) {
            enc.force_intra_frame();
        }
        let frame = pattern(n);
        let bs = enc.encode(&frame)?;
        let mut au = bs.to_vec();
        // Mark the SPS constrained baseline (constraint_set0..2), as its
        // tools are: profile-level-id 42e0xx.
        patch_sps_constraints(&mut au);
        let keyframe_au = has_idr(&au);
        out.clear();
        let ts = (u64::from(n) * 90_000 / u64::from(FPS)) as u32;
        pk.packetize(&Bytes::from(au), h264::Format::AnnexB, ts, &mut out)?;
        if tx
            .send(Media::Video(std::mem::take(&mut out), keyframe_au))
            .is_err()
        {
            return Ok(());
        }
        wake.notify_one();
    }
    Ok(())
}

fn has_idr(au: &[u8]) -> bool {
    au.windows(4)
        .any(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && w[3] & 0x1f == 5)
}

fn patch_sps_constraints(au: &mut [u8]) {
    let mut i = 0;
    while i + 5 < au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            if au[i + 3] & 0x1f == 7 {
                au[i + 5] |= 0xe0;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
}

fn audio_thread(tx: mpsc::SyncSender<Media>, wake: Arc<tokio::sync::Notify>) -> anyhow::Result<()> {
    let mut enc = rts_opus_sys::Encoder::new(48_000, 2, rts_opus_sys::Application::Audio)?;
    let mut pk = opus::Packetizer::new(opus::Config::default());
    let start = Instant::now();
    let mut pcm = vec![0f32; 960 * 2];
    let mut buf = vec![0u8; 1500];
    for n in 0u64.. {
        let due = start + Duration::from_millis(20 * n);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        for (i, s) in pcm.chunks_mut(2).enumerate() {
            let t = (n * 960 + i as u64) as f64 / 48_000.0;
            let v = ((t * 440.0 * std::f64::consts::TAU).sin() * 0.18) as f32;
            s[0] = v;
            s[1] = v;
        }
        let len = enc.encode_float(&pcm, &mut buf)?;
        let packet = pk.packetize(Bytes::copy_from_slice(&buf[..len]), (n * 960) as u32);
        if tx.send(Media::Audio(packet)).is_err() {
            return Ok(());
        }
        wake.notify_one();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (listen, udp) = support::parse_args("127.0.0.1:8080", "127.0.0.1:8000")?;
    let keyframe = Arc::new(AtomicBool::new(true));
    let (tx, rx) = mpsc::sync_channel::<Media>(256);
    let driver = support::Driver::bind(
        udp,
        TestSrc {
            keyframe: keyframe.clone(),
            media: rx,
        },
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "listening http={} udp={}",
        listener.local_addr()?,
        driver.udp_addr
    );
    println!(
        "play: POST an offer to http://{}/live/test/whep",
        listener.local_addr()?
    );
    {
        let (tx, wake, kf) = (tx.clone(), driver.wake.clone(), keyframe.clone());
        std::thread::spawn(move || {
            if let Err(e) = video_thread(tx, kf, wake) {
                eprintln!("video source stopped: {e}");
            }
        });
    }
    {
        let wake = driver.wake.clone();
        std::thread::spawn(move || {
            if let Err(e) = audio_thread(tx, wake) {
                eprintln!("audio source stopped: {e}");
            }
        });
    }
    tokio::spawn(driver.clone().serve_http(listener));
    driver.run_udp().await
}
