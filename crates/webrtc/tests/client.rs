//! Our client side ([`Peer::offer`]: full ICE, controlling, DTLS client)
//! against our server side ([`Peer::accept`]: ICE-lite, DTLS server), in
//! process on a virtual clock: WHEP-style play and WHIP-style publish.
//! Both ends are this crate; `two_peers.rs` checks the server against the
//! stack's own offerer, and the root test `webrtc_client_testsrc.rs` runs
//! the client over real UDP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rts_webrtc::{Certificate, Codec, Config, Error, Event, MediaKind, Peer, Role, Router};

const SERVER: &str = "127.0.0.1:8000";
const CLIENT: &str = "127.0.0.1:50000";

fn config(local: SocketAddr, ufrag: &str, ssrcs: (u32, u32)) -> Config {
    Config {
        local_addr: local,
        candidates: vec![local],
        certificate: Certificate::generate().unwrap(),
        ice_ufrag: ufrag.into(),
        ice_pwd: format!("{ufrag}-password-0123456789"),
        video_ssrc: ssrcs.0,
        audio_ssrc: ssrcs.1,
        idle_timeout: Duration::from_secs(10),
        stats_interval: Duration::from_secs(1),
        tcp_candidates: Vec::new(),
    }
}

#[derive(Default)]
struct Seen {
    client_connected: bool,
    server_connected: bool,
    /// (kind, codec, sequence number) received by the receiving side.
    rtp: Vec<(MediaKind, Codec, u16)>,
    /// Server datagrams dropped by the simulated loss.
    dropped: u64,
    /// NACKs the server received.
    nacks: u64,
}

fn packet(seq: u16, ts: u32, payload: Vec<u8>) -> rtc::rtp::Packet {
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            marker: true,
            payload_type: 0, // rewritten by the peer
            sequence_number: seq,
            timestamp: ts,
            ssrc: 0,
            ..Default::default()
        },
        payload: bytes::Bytes::from(payload),
    }
}

/// A client and a server peer, the offer applied and the answer back;
/// `play`: the server sends (WHEP), otherwise the client does (WHIP).
fn pair(
    now: Instant,
    play: bool,
    server_ssrcs: (u32, u32),
) -> (Peer, Peer, Router<u8>, String, String) {
    let (client_role, server_role) = if play {
        (Role::Publisher, Role::Viewer)
    } else {
        (Role::Viewer, Role::Publisher)
    };
    let (mut client, offer) = Peer::offer(
        now,
        client_role,
        &config(
            CLIENT.parse().unwrap(),
            "cliufrag",
            (0x5555_0001, 0x5555_0002),
        ),
    )
    .unwrap();
    let (server, answer) = Peer::accept(
        now,
        &offer,
        server_role,
        &config(SERVER.parse().unwrap(), "srvufrag", server_ssrcs),
    )
    .unwrap();
    client.accept_answer(now, &answer).unwrap();
    let mut router = Router::new(16, 4);
    let creds = server.ice_credentials().unwrap();
    router.insert(&creds.ufrag, &creds.pwd, 1u8);
    (client, server, router, offer, answer)
}

/// Moves datagrams both ways until neither side has more; each server
/// datagram reaches the client only if `deliver` says so.
fn exchange(
    client: &mut Peer,
    server: &mut Peer,
    router: &mut Router<u8>,
    now: Instant,
    mut deliver: impl FnMut(&[u8]) -> bool,
) {
    let server_addr: SocketAddr = SERVER.parse().unwrap();
    let client_addr: SocketAddr = CLIENT.parse().unwrap();
    let mut moved = true;
    while moved {
        moved = false;
        while let Some(t) = client.poll_transmit() {
            assert_eq!(t.destination, server_addr);
            moved = true;
            if let Some(r) = router.route(client_addr, &t.contents) {
                if r.authenticated {
                    server.mark_alive(now);
                }
                server
                    .handle_receive(now, client_addr, &t.contents)
                    .unwrap_or(());
            }
        }
        while let Some(t) = server.poll_transmit() {
            assert_eq!(t.destination, client_addr);
            moved = true;
            if deliver(&t.contents) {
                client
                    .handle_receive(now, server_addr, &t.contents)
                    .unwrap_or(());
            }
        }
    }
}

/// Runs a client and a server for 3 s of virtual time; the side that sends
/// media (server when `play`, client otherwise) sends 100 video and 50
/// audio packets once connected.
fn run(play: bool, loss_percent: u64) -> (Seen, String, String) {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64; // xorshift: a failure replays
    let start = Instant::now();
    let mut now = start;
    let (mut client, mut server, mut router, offer, answer) =
        pair(now, play, (0x1111_2222, 0x3333_4444));
    assert!(
        matches!(client.accept_answer(now, &answer), Err(Error::Usage(_))),
        "an answer applies once"
    );

    let mut seen = Seen::default();
    let mut sent = 0u16;
    let end = start + Duration::from_secs(3);
    while now < end {
        exchange(&mut client, &mut server, &mut router, now, |d| {
            // Loss on the server's SRTP once media flows (RFC 7983:
            // first byte 128..=191 is RTP/RTCP).
            let is_media = matches!(d.first(), Some(128..=191));
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if is_media && sent > 0 && sent < 100 && rng % 100 < loss_percent {
                seen.dropped += 1;
                return false;
            }
            true
        });
        for (is_client, peer) in [(true, &mut client), (false, &mut server)] {
            while let Some(ev) = peer.poll_event() {
                match ev {
                    Event::Connected if is_client => seen.client_connected = true,
                    Event::Connected => seen.server_connected = true,
                    Event::Rtp {
                        kind,
                        codec,
                        packet,
                    } => {
                        assert_eq!(is_client, play, "only the receiving side gets RTP");
                        seen.rtp.push((kind, codec, packet.header.sequence_number));
                    }
                    Event::Disconnected { reason } => panic!("disconnected: {reason}"),
                    _ => {}
                }
            }
        }
        if client.is_connected() && server.is_connected() && sent < 100 {
            let sender = if play { &mut server } else { &mut client };
            let ts = u32::from(sent) * 3000;
            assert!(
                sender
                    .send_rtc_rtp(
                        now,
                        MediaKind::Video,
                        packet(sent, ts, vec![0x65, 0x88, sent as u8])
                    )
                    .unwrap()
            );
            if sent.is_multiple_of(2) {
                assert!(
                    sender
                        .send_rtc_rtp(
                            now,
                            MediaKind::Audio,
                            packet(sent / 2, ts * 16 / 30, vec![0xfc, 1, 2])
                        )
                        .unwrap()
                );
            }
            sent += 1;
        }
        now += Duration::from_millis(5);
        for peer in [&mut client, &mut server] {
            if peer.poll_timeout().is_some_and(|t| t <= now) {
                peer.handle_timeout(now).unwrap_or(());
            }
        }
    }
    seen.nacks = server.stats().nacks_received;
    (seen, offer, answer)
}

#[test]
fn client_plays_from_server() {
    let (seen, offer, answer) = run(true, 0);
    assert!(
        !offer.contains("a=ice-lite"),
        "the client runs full ICE: {offer}"
    );
    assert!(offer.contains("a=setup:actpass"), "{offer}");
    assert!(offer.contains("a=recvonly"), "{offer}");
    assert!(offer.contains("127.0.0.1 50000 typ host"), "{offer}");
    assert!(
        offer.contains("packetization-mode=1") && offer.contains("opus/48000/2"),
        "{offer}"
    );
    assert!(answer.contains("a=setup:passive"), "{answer}");
    assert!(seen.client_connected && seen.server_connected);
    let video: Vec<u16> = seen
        .rtp
        .iter()
        .filter(|(k, c, _)| *k == MediaKind::Video && *c == Codec::H264)
        .map(|r| r.2)
        .collect();
    let audio = seen
        .rtp
        .iter()
        .filter(|(k, c, _)| *k == MediaKind::Audio && *c == Codec::Opus)
        .count();
    assert_eq!(
        video,
        (0..100).collect::<Vec<_>>(),
        "every video packet, in order"
    );
    assert_eq!(audio, 50);
}

#[test]
fn client_publishes_to_server() {
    let (seen, offer, _answer) = run(false, 0);
    assert!(
        offer.contains("a=sendrecv") || offer.contains("a=sendonly"),
        "{offer}"
    );
    assert!(seen.client_connected && seen.server_connected);
    let video = seen
        .rtp
        .iter()
        .filter(|(k, c, _)| *k == MediaKind::Video && *c == Codec::H264)
        .count();
    let audio = seen
        .rtp
        .iter()
        .filter(|(k, c, _)| *k == MediaKind::Audio && *c == Codec::Opus)
        .count();
    assert_eq!((video, audio), (100, 50));
}

#[test]
fn client_nacks_recover_loss() {
    // 10% of the server's media lost while sending: the client's NACK
    // generator asks, the server resends from its history.
    let (seen, _, _) = run(true, 10);
    assert!(
        seen.dropped > 0 && seen.nacks > 0,
        "loss injected and NACKed"
    );
    let mut video: Vec<u16> = seen
        .rtp
        .iter()
        .filter(|(k, _, _)| *k == MediaKind::Video)
        .map(|r| r.2)
        .collect();
    video.sort_unstable();
    video.dedup();
    assert_eq!(
        video,
        (0..100).collect::<Vec<_>>(),
        "every lost video packet recovered"
    );
}

#[test]
fn bad_answers_are_errors() {
    let now = Instant::now();
    let addr: SocketAddr = CLIENT.parse().unwrap();
    let (mut client, _) =
        Peer::offer(now, Role::Publisher, &config(addr, "cliufrag", (1, 2))).unwrap();
    // The stack refuses it; its error is kept as the source.
    let e = client.accept_answer(now, "not sdp").unwrap_err();
    assert!(matches!(e, Error::AnswerRefused(_)), "{e:?}");
    assert!(std::error::Error::source(&e).is_some());
    let huge = "v=0\r\n".repeat(20_000);
    assert!(matches!(
        client.accept_answer(now, &huge),
        Err(Error::MalformedAnswer(_))
    ));
}

/// A/V sync rides on the sender reports (RFC 3550 6.4.1), not on when
/// packets leave: the server sends each video frame as its media time
/// comes and each audio packet 100 ms later (an encoder's delay), and the
/// client, mapping each track's RTP time through that track's reports,
/// puts the same media time of both at the same wall-clock instant. Every
/// report of a track gives the same mapping (no second reporter with
/// another clock).
#[test]
fn sender_reports_put_both_tracks_on_one_clock() {
    const VIDEO_SSRC: u32 = 0x1111_2222;
    const AUDIO_SSRC: u32 = 0x3333_4444;
    let start = Instant::now();
    let mut now = start;
    let (mut client, mut server, mut router, _, _) = pair(now, true, (VIDEO_SSRC, AUDIO_SSRC));

    // (ssrc, ntp seconds, rtp) of every report the client got.
    let mut reports: Vec<(u32, f64, u32)> = Vec::new();
    let mut media_start: Option<Instant> = None;
    let (mut video_ms, mut audio_ms) = (0u32, 0u32);
    let end = start + Duration::from_secs(6);
    while now < end {
        exchange(&mut client, &mut server, &mut router, now, |_| true);
        while let Some(ev) = client.poll_event() {
            if let Event::SenderReport {
                ssrc,
                ntp_time,
                rtp_time,
            } = ev
            {
                reports.push((ssrc, ntp_time as f64 / 4_294_967_296.0, rtp_time));
            }
        }
        while server.poll_event().is_some() {}
        if client.is_connected() && server.is_connected() {
            let t0 = *media_start.get_or_insert(now);
            let elapsed = u32::try_from(now.duration_since(t0).as_millis()).unwrap();
            // Video at its media time, every 40 ms; audio 100 ms late,
            // every 20 ms. Media time starts at 10 s.
            while video_ms <= elapsed {
                let ts = (10_000 + video_ms) * 90;
                let p = packet((video_ms / 40) as u16, ts, vec![0x65, 0x88]);
                assert!(server.send_rtc_rtp(now, MediaKind::Video, p).unwrap());
                video_ms += 40;
            }
            while audio_ms + 100 <= elapsed {
                let ts = (10_000 + audio_ms) * 48;
                let p = packet((audio_ms / 20) as u16, ts, vec![0xfc, 1]);
                assert!(server.send_rtc_rtp(now, MediaKind::Audio, p).unwrap());
                audio_ms += 20;
            }
        }
        now += Duration::from_millis(5);
        for peer in [&mut client, &mut server] {
            if peer.poll_timeout().is_some_and(|t| t <= now) {
                peer.handle_timeout(now).unwrap_or(());
            }
        }
    }
    // The wall-clock time a report maps media time `ms` of its track to.
    let map = |r: &(u32, f64, u32), ms: u32| {
        let rate = if r.0 == VIDEO_SSRC { 90.0 } else { 48.0 };
        let ts = (10_000 + ms) * if r.0 == VIDEO_SSRC { 90 } else { 48 };
        r.1 + f64::from(ts.wrapping_sub(r.2) as i32) / (rate * 1000.0)
    };
    let video: Vec<_> = reports.iter().filter(|r| r.0 == VIDEO_SSRC).collect();
    let audio: Vec<_> = reports.iter().filter(|r| r.0 == AUDIO_SSRC).collect();
    assert!(
        video.len() >= 4 && audio.len() >= 4,
        "reports: {} video, {} audio",
        video.len(),
        audio.len()
    );
    for track in [&video, &audio] {
        for r in track.iter() {
            let drift = (map(r, 1_000) - map(track[0], 1_000)).abs();
            assert!(
                drift < 0.001,
                "a report moved its track's clock by {drift} s"
            );
        }
    }
    for ms in [0, 1_000, 3_000] {
        let offset = map(video[video.len() - 1], ms) - map(audio[audio.len() - 1], ms);
        assert!(
            offset.abs() < 0.001,
            "media time {ms} ms: video and audio {:.1} ms apart",
            offset * 1000.0
        );
    }
}
