//! WHIP sink: accepts publishers at `/{app}/{stream}/whip`, depacketizes
//! (rts-rtp) and decodes (openh264) what arrives, and when a session ends
//! prints one JSON line:
//! `{"stream":"app/stream","video_codec":"H264","video_frames":N,"keyframes":K,"decoded_frames":D,"audio_codec":"opus","audio_packets":M}`.
//!
//! ```text
//! cargo run --example whip-sink -- --listen 127.0.0.1:8080 --udp 127.0.0.1:8000
//! ```

#[path = "webrtc_support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::Instant;

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use rts::rtp::h264;
use rts::webrtc::host::{HostEvent, SessionKind};
use rts::webrtc::{Codec, MediaKind};
use rts::whip::{CreateError, Kind, ResourceId, Target};
use support::ExampleHost;

struct Ingest {
    depacketizer: h264::Depacketizer,
    decoder: Option<Decoder>,
    last_video_seq: Option<u16>,
    video_codec: Option<&'static str>,
    audio_codec: Option<&'static str>,
    video_frames: u64,
    keyframes: u64,
    decoded_frames: u64,
    decode_errors: u64,
    audio_packets: u64,
}

impl Ingest {
    fn new() -> Self {
        Self {
            depacketizer: h264::Depacketizer::new(8 << 20),
            decoder: Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
                .ok(),
            last_video_seq: None,
            video_codec: None,
            audio_codec: None,
            video_frames: 0,
            keyframes: 0,
            decoded_frames: 0,
            decode_errors: 0,
            audio_packets: 0,
        }
    }

    /// Returns whether a keyframe should be requested.
    fn video(&mut self, packet: &rts::webrtc::RtpPacket) -> bool {
        let seq = packet.header.sequence_number;
        if let Some(last) = self.last_video_seq {
            let delta = seq.wrapping_sub(last);
            if delta == 0 || delta > 0x8000 {
                return false; // duplicate or late
            }
            if delta > 1 {
                self.depacketizer.lost();
            }
        }
        self.last_video_seq = Some(seq);
        self.depacketizer.push(
            packet.header.marker,
            packet.header.timestamp,
            &packet.payload,
        );
        let mut want_keyframe = false;
        while let Some(ev) = self.depacketizer.poll_event() {
            match ev {
                h264::Event::AccessUnit(au) => {
                    self.video_frames += 1;
                    if au.keyframe {
                        self.keyframes += 1;
                    }
                    if let Some(dec) = self.decoder.as_mut() {
                        match dec.decode(&au.to_annexb()) {
                            Ok(Some(_)) => self.decoded_frames += 1,
                            Ok(None) => {}
                            Err(_) => self.decode_errors += 1,
                        }
                    }
                }
                h264::Event::KeyframeNeeded => want_keyframe = true,
            }
        }
        want_keyframe
    }
}

#[derive(Default)]
struct Sink {
    ingests: HashMap<ResourceId, Ingest>,
}

impl support::App for Sink {
    fn admit(&mut self, host: &ExampleHost, target: &Target) -> Result<(), CreateError> {
        if target.kind != Kind::Whip {
            return Err(CreateError::NotFound(format!(
                "{}/{} (this sink only accepts WHIP publishers)",
                target.app, target.stream
            )));
        }
        let publishing = host
            .sessions()
            .any(|(_, k)| matches!(k, SessionKind::Publish(t) if t == target));
        if publishing {
            return Err(CreateError::AlreadyPublishing(format!(
                "{}/{}",
                target.app, target.stream
            )));
        }
        Ok(())
    }

    fn on_event(
        &mut self,
        now: Instant,
        host: &mut ExampleHost,
        event: HostEvent<ResourceId, Target>,
    ) {
        match event {
            HostEvent::Connected { id, kind, .. } => {
                let t = kind.stream();
                println!("publisher {}/{} connected", t.app, t.stream);
                self.ingests.insert(id, Ingest::new());
                host.request_keyframe(now, id);
            }
            HostEvent::Rtp {
                id,
                media,
                codec,
                packet,
                ..
            } => {
                let ingest = self.ingests.entry(id).or_insert_with(Ingest::new);
                match (media, codec) {
                    (MediaKind::Video, Codec::H264) => {
                        ingest.video_codec = Some("H264");
                        if ingest.video(&packet) {
                            host.request_keyframe(now, id);
                        }
                    }
                    (MediaKind::Audio, Codec::Opus) => {
                        ingest.audio_codec = Some("opus");
                        ingest.audio_packets += 1;
                    }
                    _ => {}
                }
            }
            HostEvent::Closed { id, kind, reason } => {
                let target = kind.stream();
                eprintln!(
                    "publisher {}/{} disconnected: {reason}",
                    target.app, target.stream
                );
                let i = self.ingests.remove(&id).unwrap_or_else(Ingest::new);
                let line = serde_json::json!({
                    "stream": format!("{}/{}", target.app, target.stream),
                    "video_codec": i.video_codec,
                    "video_frames": i.video_frames,
                    "keyframes": i.keyframes,
                    "decoded_frames": i.decoded_frames,
                    "decode_errors": i.decode_errors,
                    "audio_codec": i.audio_codec,
                    "audio_packets": i.audio_packets,
                });
                println!("{line}");
            }
            _ => {}
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (listen, udp) = support::parse_args("127.0.0.1:8080", "127.0.0.1:8000")?;
    let driver = support::Driver::bind(udp, Sink::default()).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "listening http={} udp={}",
        listener.local_addr()?,
        driver.udp_addr
    );
    tokio::spawn(driver.clone().serve_http(listener));
    driver.run_udp().await
}
