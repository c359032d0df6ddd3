//! A virtual network for the host and its clients, in the style of str0m's
//! `tests/common.rs` and quinn's `tests/util.rs` `Pair`: one [`Host`] on a
//! server address and any number of our clients ([`Peer::offer`]: full
//! ICE, DTLS client) on their own addresses, a virtual clock, a one-way
//! delay, and seeded loss each way. Time only moves when nothing is left to
//! do now, straight to the next due datagram or timer, so a run of seconds
//! takes milliseconds and the same seed gives the same run.
#![allow(dead_code)] // each test file uses a different subset

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rts_webrtc::host::{Host, HostConfig, HostEvent, Keyframes, SessionKind};
use rts_webrtc::{Certificate, Codec, Config, Event, MediaKind, Peer, Role};

pub(crate) const SERVER: &str = "127.0.0.1:8000";
pub(crate) type Stream = &'static str;
pub(crate) const STREAM: Stream = "live/demo";

/// Deterministic xorshift, so a failure replays.
pub(crate) struct Rng(u64);
impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// True with probability `permille`/1000.
    pub(crate) fn chance(&mut self, permille: u64) -> bool {
        self.next() % 1000 < permille
    }
}

/// A peer config; empty ICE credentials make the stack draw random ones.
pub(crate) fn peer_config(local: SocketAddr, certificate: &Certificate, ssrc: u32) -> Config {
    Config {
        local_addr: local,
        candidates: vec![local],
        certificate: certificate.clone(),
        ice_ufrag: String::new(),
        ice_pwd: String::new(),
        video_ssrc: ssrc,
        audio_ssrc: ssrc.wrapping_add(1),
        idle_timeout: Duration::from_secs(15),
        stats_interval: Duration::from_secs(1),
        tcp_candidates: Vec::new(),
    }
}

/// One of our clients, playing (WHEP) from the host.
pub(crate) struct Client {
    pub(crate) id: u32,
    pub(crate) addr: SocketAddr,
    pub(crate) peer: Peer,
    pub(crate) connected_at: Option<Duration>,
    pub(crate) first_video_at: Option<Duration>,
    /// Video packets received: (sequence number, marker).
    pub(crate) video: Vec<u16>,
    /// Whether the first video packet started a keyframe (a STAP-A or an
    /// IDR slice).
    pub(crate) first_video_keyframe: Option<bool>,
    pub(crate) audio: u64,
    pub(crate) closed: Option<&'static str>,
    /// The host's SDP answer.
    pub(crate) answer: String,
}

struct InFlight {
    at: Instant,
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: BytesMut,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(o.at, o.order))
    }
}

/// A media source on the host: video frames of `packets_per_frame`
/// packets every 33 ms with a keyframe every `gop` frames, and an audio
/// packet every 20 ms.
pub(crate) struct Source {
    pub(crate) stream: Stream,
    pub(crate) gop: u32,
    pub(crate) packets_per_frame: u16,
    next_video: Instant,
    next_audio: Instant,
    frame: u32,
    seq: u16,
    audio_seq: u16,
    pub(crate) frames_sent: u32,
    /// Keyframes made on request ([`HostEvent::KeyframeNeeded`]).
    pub(crate) on_request: bool,
    keyframe_now: bool,
}

pub(crate) struct Net {
    pub(crate) start: Instant,
    pub(crate) now: Instant,
    pub(crate) host: Host<u32, Stream>,
    pub(crate) server: SocketAddr,
    pub(crate) clients: Vec<Client>,
    pub(crate) certificate: Certificate,
    pub(crate) events: Vec<HostEvent<u32, Stream>>,
    pub(crate) source: Option<Source>,
    /// Loss in permille, client to server and server to client.
    pub(crate) loss_up: u64,
    pub(crate) loss_down: u64,
    pub(crate) delay: Duration,
    pub(crate) dropped: u64,
    pub(crate) delivered: u64,
    rng: Rng,
    wire: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    next_id: u32,
}

impl Net {
    pub(crate) fn new(seed: u64, config: HostConfig) -> Net {
        let start = Instant::now();
        Net {
            start,
            now: start,
            host: Host::new(config),
            server: SERVER.parse().unwrap(),
            clients: Vec::new(),
            certificate: Certificate::generate().unwrap(),
            events: Vec::new(),
            source: None,
            loss_up: 0,
            loss_down: 0,
            delay: Duration::from_millis(10),
            dropped: 0,
            delivered: 0,
            rng: Rng::new(seed),
            wire: BinaryHeap::new(),
            order: 0,
            next_id: 1,
        }
    }

    /// Loss in percent, each way.
    pub(crate) fn with_loss(mut self, percent: u64) -> Self {
        self.loss_up = percent * 10;
        self.loss_down = percent * 10;
        self
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(self.start)
    }

    /// A client at `addr` offers to play `stream`; the host takes the
    /// server's side of it. Returns its index.
    pub(crate) fn add_viewer_at(
        &mut self,
        stream: Stream,
        addr: SocketAddr,
    ) -> Result<usize, String> {
        let id = self.next_id;
        self.next_id += 1;
        let (mut peer, offer) = Peer::offer(
            self.now,
            Role::Publisher,
            &peer_config(addr, &self.certificate, 0),
        )
        .map_err(|e| e.to_string())?;
        let (server_peer, answer) = Peer::accept(
            self.now,
            &offer,
            Role::Viewer,
            &peer_config(self.server, &self.certificate, 0x1000 + id),
        )
        .map_err(|e| e.to_string())?;
        self.host
            .insert(
                self.now,
                id,
                SessionKind::Play(stream),
                server_peer,
                addr.ip(),
            )
            .map_err(|e| e.to_string())?;
        peer.accept_answer(self.now, &answer)
            .map_err(|e| e.to_string())?;
        self.clients.push(Client {
            id,
            addr,
            peer,
            connected_at: None,
            first_video_at: None,
            video: Vec::new(),
            first_video_keyframe: None,
            audio: 0,
            closed: None,
            answer,
        });
        self.pump();
        Ok(self.clients.len() - 1)
    }

    pub(crate) fn add_viewer(&mut self, stream: Stream) -> usize {
        let n = self.clients.len() as u16;
        let addr = SocketAddr::from(([127, 0, 0, 1], 50_000 + n));
        self.add_viewer_at(stream, addr).unwrap()
    }

    pub(crate) fn attach_source(&mut self, stream: Stream, gop: u32, packets_per_frame: u16) {
        self.source = Some(Source {
            stream,
            gop,
            packets_per_frame,
            next_video: self.now,
            next_audio: self.now,
            frame: 0,
            seq: 0,
            audio_seq: 0,
            frames_sent: 0,
            on_request: false,
            keyframe_now: false,
        });
    }

    /// Makes the source a transcoder: keyframes on request.
    pub(crate) fn source_on_request(&mut self) {
        if let Some(s) = self.source.as_mut() {
            s.on_request = true;
            self.host.set_keyframes(&s.stream, Keyframes::OnRequest);
        }
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: BytesMut) {
        let permille = if to == self.server {
            self.loss_up
        } else {
            self.loss_down
        };
        if permille > 0 && self.rng.chance(permille) {
            self.dropped += 1;
            return;
        }
        self.order += 1;
        self.wire.push(Reverse(InFlight {
            at: self.now + self.delay,
            order: self.order,
            from,
            to,
            bytes,
        }));
    }

    /// Does everything due now: host and client output onto the wire, the
    /// events.
    fn pump(&mut self) {
        let server = self.server;
        while let Some(t) = self.host.poll_transmit() {
            self.send(server, t.destination, t.contents);
        }
        while let Some(ev) = self.host.poll_event() {
            if let HostEvent::KeyframeNeeded { stream } = &ev
                && let Some(s) = self.source.as_mut()
                && s.stream == *stream
                && s.on_request
            {
                s.keyframe_now = true;
            }
            self.events.push(ev);
        }
        let elapsed = self.elapsed();
        let mut out = Vec::new();
        for c in &mut self.clients {
            while let Some(t) = c.peer.poll_transmit() {
                out.push((c.addr, t.destination, t.contents));
            }
            while let Some(ev) = c.peer.poll_event() {
                match ev {
                    Event::Connected => c.connected_at = Some(elapsed),
                    Event::Rtp {
                        kind: MediaKind::Video,
                        codec: Codec::H264,
                        packet,
                    } => {
                        c.first_video_at.get_or_insert(elapsed);
                        if c.first_video_keyframe.is_none() {
                            let t = packet.payload.first().map(|b| b & 0x1f);
                            c.first_video_keyframe = Some(matches!(t, Some(5 | 24)));
                        }
                        c.video.push(packet.header.sequence_number);
                    }
                    Event::Rtp {
                        kind: MediaKind::Audio,
                        ..
                    } => c.audio += 1,
                    Event::Disconnected { reason } => c.closed = Some(reason),
                    _ => {}
                }
            }
        }
        for (from, to, bytes) in out {
            self.send(from, to, bytes);
        }
    }

    fn source_tick(&mut self) {
        let Some(s) = self.source.as_mut() else {
            return;
        };
        let now = self.now;
        let mut video = None;
        if s.next_video <= now {
            s.next_video += Duration::from_millis(33);
            let keyframe = s.frame.is_multiple_of(s.gop) || s.keyframe_now;
            s.keyframe_now = false;
            s.frame += 1;
            let mut packets = Vec::new();
            for i in 0..s.packets_per_frame {
                let first = i == 0;
                let nal = if keyframe && first { 0x65 } else { 0x41 };
                packets.push(rts_rtp::Packet {
                    marker: i + 1 == s.packets_per_frame,
                    payload_type: 96,
                    sequence_number: s.seq,
                    timestamp: s.frame.wrapping_mul(3000),
                    ssrc: 0,
                    payload: rts_rtp::Payload::from_bytes(Bytes::from(vec![nal, 0x88, i as u8])),
                });
                s.seq = s.seq.wrapping_add(1);
            }
            s.frames_sent += 1;
            video = Some((s.stream, packets, keyframe));
        }
        let mut audio = None;
        if s.next_audio <= now {
            s.next_audio += Duration::from_millis(20);
            audio = Some((
                s.stream,
                rts_rtp::Packet {
                    marker: false,
                    payload_type: 111,
                    sequence_number: s.audio_seq,
                    timestamp: u32::from(s.audio_seq).wrapping_mul(960),
                    ssrc: 0,
                    payload: rts_rtp::Payload::from_bytes(Bytes::from_static(&[0xf8, 1, 2])),
                },
            ));
            s.audio_seq = s.audio_seq.wrapping_add(1);
        }
        if let Some((stream, packets, keyframe)) = video {
            self.host.send_video(now, &stream, &packets, keyframe);
        }
        if let Some((stream, packet)) = audio {
            self.host.send_audio(now, &stream, &packet);
        }
    }

    /// The earliest thing that is due: a datagram, a timer, a media tick.
    fn next_due(&mut self) -> Option<Instant> {
        let mut next = self.wire.peek().map(|Reverse(d)| d.at);
        let mut keep = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        keep(self.host.poll_timeout());
        for c in &mut self.clients {
            keep(c.peer.poll_timeout());
        }
        if let Some(s) = &self.source {
            keep(Some(s.next_video.min(s.next_audio)));
        }
        next
    }

    /// One step: everything due at the next due instant.
    pub(crate) fn step(&mut self) {
        let Some(at) = self.next_due() else {
            self.now += Duration::from_millis(10);
            return;
        };
        // Never backwards; at least a microsecond so a timer that stays due
        // cannot stall the clock.
        self.now = at.max(self.now + Duration::from_micros(1));
        let now = self.now;
        while let Some(Reverse(d)) = self.wire.peek()
            && d.at <= now
        {
            let Some(Reverse(d)) = self.wire.pop() else {
                break;
            };
            self.delivered += 1;
            if d.to == self.server {
                self.host.handle_datagram(now, d.from, &d.bytes);
            } else if let Some(c) = self.clients.iter_mut().find(|c| c.addr == d.to) {
                let _ = c.peer.handle_receive(now, d.from, &d.bytes);
            }
        }
        self.host.handle_timeout(now);
        for c in &mut self.clients {
            if c.peer.poll_timeout().is_some_and(|t| t <= now) {
                let _ = c.peer.handle_timeout(now);
            }
        }
        self.source_tick();
        self.pump();
    }

    /// Steps until `done` holds or `limit` of virtual time passed since the
    /// start; returns whether `done` held.
    pub(crate) fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Net) -> bool,
    ) -> bool {
        while self.elapsed() < limit {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    /// Steps for `d` of virtual time.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    pub(crate) fn closed_events(&self) -> Vec<(u32, &'static str)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                HostEvent::Closed { id, reason, .. } => Some((*id, *reason)),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn keyframe_requests(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, HostEvent::KeyframeNeeded { .. }))
            .count()
    }
}

/// An IP other than the clients' 127.0.0.1.
pub(crate) fn other_ip() -> IpAddr {
    IpAddr::from([127, 0, 0, 2])
}
