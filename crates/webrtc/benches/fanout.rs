//! Cost per viewer of sending a stream: one packetized RTP packet (1,200
//! bytes, as a 2.5 Mbit/s H.264 stream is cut) goes to one connected viewer
//! peer (payload type/SSRC rewrite, the interceptor chain, SRTP protect)
//! and out of a UDP socket on loopback. A 2.5 Mbit/s stream is about 260
//! such packets per second, so viewers per core = 1 s / (260 x time).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtc::interceptor::Registry;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rts_webrtc::{Certificate, Config, Event, MediaKind, Peer, Role};

/// A viewer peer connected (ICE + DTLS) to an in-process webrtc-rs client.
fn connected_viewer(server: SocketAddr, client_addr: SocketAddr) -> (Peer, Instant) {
    let start = Instant::now();
    let mut now = start;
    let mut me = MediaEngine::default();
    me.register_default_codecs().unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut me).unwrap();
    let mut client = RTCPeerConnectionBuilder::new()
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .build(now)
        .unwrap();
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        client
            .add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .unwrap();
    }
    let offer = client.create_offer(None).unwrap();
    client.set_local_description(now, offer).unwrap();
    let cand = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".into(),
            address: client_addr.ip().to_string(),
            port: client_addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .unwrap();
    client
        .add_local_candidate(RTCIceCandidate::from(&cand).to_json().unwrap())
        .unwrap();
    let offer_sdp = client.local_description().unwrap().sdp;
    let config = Config {
        local_addr: server,
        candidates: vec![server],
        certificate: Certificate::generate().unwrap(),
        ice_ufrag: "benchufrag".into(),
        ice_pwd: "bench-password-0123456789".into(),
        video_ssrc: 0x1111_2222,
        audio_ssrc: 0x3333_4444,
        idle_timeout: Duration::from_secs(3600),
        stats_interval: Duration::from_secs(3600),
        tcp_candidates: Vec::new(),
    };
    let (mut peer, answer) = Peer::accept(now, &offer_sdp, Role::Viewer, &config).unwrap();
    client
        .set_remote_description(now, RTCSessionDescription::answer(answer).unwrap())
        .unwrap();
    for _ in 0..5000 {
        while let Some(msg) = client.poll_write() {
            let _ = peer.handle_receive(now, client_addr, &msg.message);
        }
        while let Some(t) = peer.poll_transmit() {
            let _ = client.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: client_addr,
                    peer_addr: server,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: t.contents,
            });
        }
        while client.poll_event().is_some() {}
        while client.poll_read().is_some() {}
        while let Some(ev) = peer.poll_event() {
            if matches!(ev, Event::Connected) {
                return (peer, now);
            }
        }
        now += Duration::from_millis(1);
        if peer.poll_timeout().is_some_and(|t| t <= now) {
            let _ = peer.handle_timeout(now);
        }
        if client.poll_timeout().is_some_and(|t| t <= now) {
            let _ = client.handle_timeout(now);
        }
    }
    panic!("viewer did not connect");
}

fn fanout(c: &mut Criterion) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = socket.local_addr().unwrap();
    let client_addr = sink.local_addr().unwrap();
    let (mut peer, now) = connected_viewer(server, client_addr);
    let payload = Bytes::from(vec![0x5cu8; 1188]);
    let payload_frame = payload.clone();
    let mut seq: u16 = 0;
    let mut packet = move || {
        seq = seq.wrapping_add(1);
        rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: seq.is_multiple_of(10),
                sequence_number: seq,
                timestamp: u32::from(seq / 10) * 3000,
                ..Default::default()
            },
            payload: payload.clone(),
        }
    };

    let mut g = c.benchmark_group("webrtc_fanout");
    g.throughput(Throughput::Bytes(1200));
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.bench_function("per_viewer_packet_protect_only", |b| {
        b.iter(|| {
            peer.send_rtc_rtp(now, MediaKind::Video, packet()).unwrap();
            let mut n = 0;
            while let Some(t) = peer.poll_transmit() {
                n += t.contents.len();
            }
            n
        })
    });
    g.bench_function("per_viewer_packet_protect_and_udp_send", |b| {
        b.iter(|| {
            peer.send_rtc_rtp(now, MediaKind::Video, packet()).unwrap();
            while let Some(t) = peer.poll_transmit() {
                let _ = socket.send_to(&t.contents, t.destination);
            }
        })
    });
    g.finish();

    // One viewer's share of one frame: a 2.5 Mbit/s stream at 30 fps is
    // about 10.4 KB a frame, 9 packets (8 x 1,200 bytes and a shorter
    // last one), all to the same address. Per-datagram `sendto` against one
    // GSO `sendmsg` (UDP_SEGMENT) for the frame, same run.
    let mut sender = rts_webrtc::udp::BatchSender::new(&socket).unwrap();
    eprintln!("GSO segments per send: {}", sender.max_segments());
    let last = Bytes::from(vec![0x5cu8; 588]);
    let mut frame_seq: u16 = 0;
    let mut frame = move || {
        (0..FRAME_PACKETS)
            .map(|i| {
                frame_seq = frame_seq.wrapping_add(1);
                let last_one = i + 1 == FRAME_PACKETS;
                rtc::rtp::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        marker: last_one,
                        sequence_number: frame_seq,
                        timestamp: u32::from(frame_seq / 9) * 3000,
                        ..Default::default()
                    },
                    payload: if last_one {
                        last.clone()
                    } else {
                        payload_frame.clone()
                    },
                }
            })
            .collect::<Vec<_>>()
    };
    let mut out: Vec<(SocketAddr, bytes::BytesMut)> = Vec::with_capacity(16);
    let mut g = c.benchmark_group("webrtc_fanout_frame");
    g.throughput(Throughput::Elements(FRAME_PACKETS as u64));
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.bench_function("per_viewer_frame_9_packets_protect_and_sendto_each", |b| {
        b.iter(|| {
            for p in frame() {
                peer.send_rtc_rtp(now, MediaKind::Video, p).unwrap();
            }
            while let Some(t) = peer.poll_transmit() {
                let _ = socket.send_to(&t.contents, t.destination);
            }
        })
    });
    g.bench_function("per_viewer_frame_9_packets_protect_and_gso_send", |b| {
        b.iter(|| {
            for p in frame() {
                peer.send_rtc_rtp(now, MediaKind::Video, p).unwrap();
            }
            out.clear();
            while let Some(t) = peer.poll_transmit() {
                out.push((t.destination, t.contents));
            }
            let mut sent = 0;
            while sent < out.len() {
                match sender.send(&socket, &out[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => sent += 1,
                }
            }
        })
    });
    // The fragment sizes rts-rtp made before it cut all but the last to one
    // size: 4 x 1,189-byte and 5 x 1,188-byte payloads make two GSO runs (a
    // shorter datagram ends a run). Kept for comparison.
    let long = Bytes::from(vec![0x5cu8; 1189]);
    let short = Bytes::from(vec![0x5cu8; 1188]);
    let mut split_seq: u16 = 0;
    g.bench_function("per_viewer_frame_9_packets_equal_split_gso_send", |b| {
        b.iter(|| {
            for i in 0..FRAME_PACKETS {
                split_seq = split_seq.wrapping_add(1);
                let p = rtc::rtp::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        marker: i + 1 == FRAME_PACKETS,
                        sequence_number: split_seq,
                        timestamp: u32::from(split_seq / 9) * 3000,
                        ..Default::default()
                    },
                    payload: if i < 4 { long.clone() } else { short.clone() },
                };
                peer.send_rtc_rtp(now, MediaKind::Video, p).unwrap();
            }
            out.clear();
            while let Some(t) = peer.poll_transmit() {
                out.push((t.destination, t.contents));
            }
            let mut sent = 0;
            while sent < out.len() {
                match sender.send(&socket, &out[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => sent += 1,
                }
            }
        })
    });
    g.finish();
}

const FRAME_PACKETS: usize = 9;

criterion_group!(benches, fanout);
criterion_main!(benches);
