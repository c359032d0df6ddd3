//! Two peers built from the same stack, in process, on a virtual clock:
//! a webrtc-rs offerer (full ICE, controlling, DTLS client, NACK generator)
//! plays from our [`Peer`] through the [`Router`], with loss and
//! reordering on the media path. Checks ICE, DTLS, SRTP and NACK recovery.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::interceptor::Registry;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::RTCRtpTransceiverInit;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rts_webrtc::{Certificate, Config, Event, MediaKind, Peer, Role, Router};

const SERVER: &str = "127.0.0.1:8000";
const CLIENT: &str = "127.0.0.1:50000";

/// Deterministic xorshift, so a failure replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn config(server: SocketAddr) -> Config {
    Config {
        local_addr: server,
        candidates: vec![server],
        certificate: Certificate::generate().unwrap(),
        ice_ufrag: "srvufrag".into(),
        ice_pwd: "server-password-0123456789".into(),
        video_ssrc: 0x1111_2222,
        audio_ssrc: 0x3333_4444,
        idle_timeout: Duration::from_secs(10),
        stats_interval: Duration::from_secs(1),
        tcp_candidates: Vec::new(),
    }
}

struct Run {
    received: BTreeSet<u16>,
    sent: u16,
    connected_at: Option<Duration>,
    server_answer: String,
    nacks: u64,
}

fn run(loss_percent: u64, reorder_percent: u64, seed: u64) -> Run {
    let server: SocketAddr = SERVER.parse().unwrap();
    let client_addr: SocketAddr = CLIENT.parse().unwrap();
    let start = Instant::now();
    let mut now = start;
    let mut rng = Rng(seed);

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

    let (mut peer, answer) = Peer::accept(now, &offer_sdp, Role::Viewer, &config(server)).unwrap();
    let mut router = Router::new(16, 4);
    let creds = peer.ice_credentials().unwrap();
    router.insert(&creds.ufrag, &creds.pwd, 7u8);
    client
        .set_remote_description(now, RTCSessionDescription::answer(answer.clone()).unwrap())
        .unwrap();

    let mut to_client: VecDeque<BytesMut> = VecDeque::new();
    let mut held: Option<BytesMut> = None;
    let mut received = BTreeSet::new();
    let mut connected_at = None;
    let mut sent: u16 = 0;
    let mut next_media = start;
    let end = start + Duration::from_secs(8);
    while now < end {
        // client -> server (through the router)
        while let Some(msg) = client.poll_write() {
            assert_eq!(msg.transport.peer_addr, server);
            if let Some(r) = router.route(client_addr, &msg.message) {
                if r.authenticated {
                    peer.mark_alive(now);
                }
                peer.handle_receive(now, client_addr, &msg.message)
                    .unwrap_or(());
            }
        }
        // server -> client, with loss and reordering of SRTP once connected
        while let Some(t) = peer.poll_transmit() {
            assert_eq!(t.destination, client_addr);
            let is_media = matches!(t.contents.first(), Some(128..=191));
            if is_media && connected_at.is_some() && rng.chance(loss_percent) {
                continue;
            }
            if is_media && connected_at.is_some() && held.is_none() && rng.chance(reorder_percent) {
                held = Some(t.contents);
                continue;
            }
            to_client.push_back(t.contents);
            if let Some(h) = held.take() {
                to_client.push_back(h);
            }
        }
        while let Some(bytes) = to_client.pop_front() {
            client
                .handle_read(TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: client_addr,
                        peer_addr: server,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: bytes,
                })
                .unwrap_or(());
        }
        while let Some(ev) = peer.poll_event() {
            if matches!(ev, Event::Connected) {
                connected_at = Some(now - start);
            }
        }
        while let Some(ev) = client.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                RTCPeerConnectionState::Failed,
            ) = ev
            {
                panic!("client connection failed");
            }
        }
        while let Some(msg) = client.poll_read() {
            if let RTCMessage::RtpPacket(_, p) = msg.message
                && p.header.ssrc == 0x1111_2222
            {
                received.insert(p.header.sequence_number);
            }
        }
        // 100 video packets per second for 5 s once connected.
        if connected_at.is_some() && now >= next_media && sent < 500 {
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: true,
                    payload_type: 0, // rewritten by the peer
                    sequence_number: sent,
                    timestamp: u32::from(sent) * 900,
                    ssrc: 0,
                    ..Default::default()
                },
                payload: bytes::Bytes::from(vec![0x41, 0x9a, sent as u8, 0, 0, 0]),
            };
            assert!(peer.send_rtc_rtp(now, MediaKind::Video, packet).unwrap());
            sent += 1;
            next_media = now + Duration::from_millis(10);
        }
        now += Duration::from_millis(1);
        if peer.poll_timeout().is_some_and(|t| t <= now) {
            peer.handle_timeout(now).unwrap_or(());
        }
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now).unwrap_or(());
        }
    }
    Run {
        received,
        sent,
        connected_at,
        server_answer: answer,
        nacks: peer.stats().nacks_received,
    }
}

#[test]
fn answer_is_ice_lite_passive_with_our_codecs() {
    let r = run(0, 0, 1);
    let a = &r.server_answer;
    assert!(a.contains("a=ice-lite"), "{a}");
    assert!(a.contains("a=setup:passive"), "{a}");
    assert!(a.contains("a=fingerprint:sha-256 "), "{a}");
    assert!(a.contains("a=rtcp-mux"), "{a}");
    assert!(a.contains("a=group:BUNDLE"), "{a}");
    assert!(
        a.contains("a=candidate:") && a.contains("127.0.0.1 8000 typ host"),
        "{a}"
    );
    assert!(
        a.contains("packetization-mode=1") && a.contains("profile-level-id=42e01f"),
        "{a}"
    );
    assert!(a.contains("useinbandfec=1"), "{a}");
    assert!(
        a.contains("a=rtcp-fb:") && a.contains(" nack pli") && a.contains(" ccm fir"),
        "{a}"
    );
    assert!(a.contains("a=sendonly"), "{a}");
    assert!(!a.contains("VP8"), "{a}");
}

#[test]
fn connects_and_delivers_without_loss() {
    let r = run(0, 0, 2);
    assert!(r.connected_at.is_some(), "never connected");
    assert_eq!(r.sent, 500);
    assert_eq!(r.received.len(), 500, "all packets arrive decrypted");
}

#[test]
fn nack_recovers_loss_and_reordering() {
    let r = run(5, 5, 3);
    assert!(r.connected_at.is_some(), "never connected");
    assert_eq!(r.sent, 500);
    // Loss only on the media path; NACK retransmissions recover all but the
    // last few (sent too late to be NACKed before the run ends).
    assert!(r.nacks > 0, "loss was injected, so NACKs must have arrived");
    let missing: Vec<u16> = (0..490).filter(|s| !r.received.contains(s)).collect();
    assert!(missing.is_empty(), "not recovered: {missing:?}");
}
