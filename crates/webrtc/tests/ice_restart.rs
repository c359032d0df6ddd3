//! ICE restart (RFC 8445 9, RFC 8839 4.4.1.1.1) in process on a virtual
//! clock: our client ([`Peer::offer`]) plays from our server
//! ([`Peer::accept`]), both restart with new credentials the way a WHEP
//! PATCH carries them (RFC 9725 4.3), and media keeps flowing over the same
//! DTLS/SRTP session; a check with the old username is refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rts_webrtc::demux::{Class, classify, stun_username};
use rts_webrtc::{Certificate, Config, Event, MediaKind, Peer, Role, Router};

const SERVER: &str = "127.0.0.1:8000";
const CLIENT: &str = "127.0.0.1:50000";

/// Empty credentials: the stack picks random ones, and new ones at a restart.
fn config(local: SocketAddr) -> Config {
    Config {
        local_addr: local,
        candidates: vec![local],
        certificate: Certificate::generate().unwrap(),
        ice_ufrag: String::new(),
        ice_pwd: String::new(),
        video_ssrc: 0x1111_2222,
        audio_ssrc: 0x3333_4444,
        idle_timeout: Duration::from_secs(10),
        stats_interval: Duration::from_secs(1),
    }
}

fn packet(seq: u16) -> rtc::rtp::Packet {
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            marker: true,
            sequence_number: seq,
            timestamp: u32::from(seq) * 3000,
            ..Default::default()
        },
        payload: bytes::Bytes::from(vec![0x65, 0x88, seq as u8]),
    }
}

struct Net {
    client: Peer,
    server: Peer,
    router: Router<u8>,
    server_addr: SocketAddr,
    client_addr: SocketAddr,
    now: Instant,
    /// Video sequence numbers the client received.
    video: Vec<u16>,
    /// STUN binding requests the client sent, by username.
    checks: Vec<(String, Vec<u8>)>,
    connected: (bool, bool),
}

impl Net {
    /// Runs `ms` of virtual time; while `send` is set and both ends are
    /// connected, the server sends one video packet per 5 ms from `*seq`.
    fn run(&mut self, ms: u64, mut send: Option<(&mut u16, u16)>) {
        let end = self.now + Duration::from_millis(ms);
        while self.now < end {
            let mut moved = true;
            while moved {
                moved = false;
                while let Some(t) = self.client.poll_transmit() {
                    moved = true;
                    if classify(&t.contents) == Class::Stun
                        && let Some(user) = stun_username(&t.contents)
                    {
                        self.checks.push((user.to_owned(), t.contents.to_vec()));
                    }
                    if self.router.route(self.client_addr, &t.contents) == Some(1) {
                        let _ = self
                            .server
                            .handle_receive(self.now, self.client_addr, &t.contents);
                    }
                }
                while let Some(t) = self.server.poll_transmit() {
                    moved = true;
                    let _ = self
                        .client
                        .handle_receive(self.now, self.server_addr, &t.contents);
                }
            }
            for (is_client, peer) in [(true, &mut self.client), (false, &mut self.server)] {
                while let Some(ev) = peer.poll_event() {
                    match ev {
                        Event::Connected if is_client => self.connected.0 = true,
                        Event::Connected => self.connected.1 = true,
                        Event::Rtp {
                            kind: MediaKind::Video,
                            packet,
                            ..
                        } => {
                            self.video.push(packet.header.sequence_number);
                        }
                        Event::Disconnected { reason } => panic!("disconnected: {reason}"),
                        _ => {}
                    }
                }
            }
            if let Some((seq, until)) = send.as_mut()
                && **seq < *until
                && self.client.is_connected()
                && self.server.is_connected()
                && self
                    .server
                    .send_rtc_rtp(self.now, MediaKind::Video, packet(**seq))
                    .unwrap()
            {
                **seq += 1;
            }
            self.now += Duration::from_millis(5);
            for peer in [&mut self.client, &mut self.server] {
                if peer.poll_timeout().is_some_and(|t| t <= self.now) {
                    let _ = peer.handle_timeout(self.now);
                }
            }
        }
    }
}

#[test]
fn media_continues_after_ice_restart_and_old_username_is_refused() {
    let server_addr: SocketAddr = SERVER.parse().unwrap();
    let client_addr: SocketAddr = CLIENT.parse().unwrap();
    let now = Instant::now();
    let (mut client, offer) = Peer::offer(now, Role::Publisher, &config(client_addr)).unwrap();
    let (server, answer) = Peer::accept(now, &offer, Role::Viewer, &config(server_addr)).unwrap();
    client.accept_answer(now, &answer).unwrap();
    let mut router = Router::new(16);
    router.insert(server.ice_ufrag(), 1u8);
    let old_server = server.ice_credentials().unwrap();
    let old_client = client.ice_credentials().unwrap();
    assert_eq!(old_server.ufrag, server.ice_ufrag());
    assert!(answer.contains(&format!("a=ice-ufrag:{}", old_server.ufrag)));
    let mut net = Net {
        client,
        server,
        router,
        server_addr,
        client_addr,
        now,
        video: Vec::new(),
        checks: Vec::new(),
        connected: (false, false),
    };

    // Before: connect and play 50 packets.
    let mut seq = 0u16;
    net.run(2000, Some((&mut seq, 50)));
    assert_eq!(net.connected, (true, true));
    assert_eq!(net.video, (0..50).collect::<Vec<_>>());
    let old_user = format!("{}:{}", old_server.ufrag, old_client.ufrag);
    let old_check = net
        .checks
        .iter()
        .find(|(u, _)| *u == old_user)
        .map(|(_, d)| d.clone())
        .expect("the client checked with the first credentials");

    // The restart, as a WHEP client and server do it over PATCH.
    let new_client = net.client.restart_ice_offer(net.now).unwrap();
    assert_ne!(new_client, old_client, "the client has new credentials");
    let new_server = net
        .server
        .restart_ice(net.now, &new_client.ufrag, &new_client.pwd)
        .unwrap();
    assert_ne!(new_server.ufrag, old_server.ufrag, "new server ufrag");
    assert_ne!(new_server.pwd, old_server.pwd, "new server pwd");
    assert_eq!(net.server.ice_ufrag(), new_server.ufrag);
    net.router.replace_ufrag(&1, &new_server.ufrag);
    net.client
        .restart_ice_answer(net.now, &new_server.ufrag, &new_server.pwd)
        .unwrap();
    assert!(net.server.is_connected() && net.client.is_connected());

    // After: checks with the new username, and media flows again.
    net.checks.clear();
    net.run(3000, Some((&mut seq, 150)));
    let new_user = format!("{}:{}", new_server.ufrag, new_client.ufrag);
    assert!(
        net.checks.iter().any(|(u, _)| *u == new_user),
        "checks use the new credentials"
    );
    assert!(
        net.checks.iter().all(|(u, _)| *u != old_user),
        "no check with the old credentials after the restart"
    );
    let after: Vec<u16> = net.video.iter().copied().filter(|s| *s >= 50).collect();
    assert!(
        after.len() >= 90 && after.last() == Some(&149),
        "media continues after the restart: {} of 100 packets, last {:?}",
        after.len(),
        after.last()
    );

    // The old username: the router no longer knows it (a new address is
    // not bound), and the server itself does not answer it.
    let other: SocketAddr = "127.0.0.1:50001".parse().unwrap();
    assert_eq!(net.router.route(other, &old_check), None);
    while net.server.poll_transmit().is_some() {}
    net.server
        .handle_receive(net.now, client_addr, &old_check)
        .unwrap_or(());
    let mut answered = false;
    while let Some(t) = net.server.poll_transmit() {
        answered |= classify(&t.contents) == Class::Stun;
    }
    assert!(!answered, "a check with the old username gets no response");
    // A check with the new username does get one.
    let new_check = net
        .checks
        .iter()
        .find(|(u, _)| *u == new_user)
        .map(|(_, d)| d.clone())
        .unwrap();
    net.server
        .handle_receive(net.now, client_addr, &new_check)
        .unwrap_or(());
    let mut answered = false;
    while let Some(t) = net.server.poll_transmit() {
        answered |= classify(&t.contents) == Class::Stun;
    }
    assert!(answered, "a check with the new username is answered");
}

#[test]
fn restart_rejects_bad_credentials_and_wrong_side() {
    let server_addr: SocketAddr = SERVER.parse().unwrap();
    let client_addr: SocketAddr = CLIENT.parse().unwrap();
    let now = Instant::now();
    let (mut client, offer) = Peer::offer(now, Role::Publisher, &config(client_addr)).unwrap();
    let (mut server, answer) =
        Peer::accept(now, &offer, Role::Viewer, &config(server_addr)).unwrap();
    assert!(
        client.restart_ice_offer(now).is_err(),
        "no restart before the answer"
    );
    client.accept_answer(now, &answer).unwrap();
    assert!(server.restart_ice(now, "ab", "x").is_err(), "too short");
    assert!(
        server
            .restart_ice(now, "abcd\r\na=x", "0123456789012345678901")
            .is_err(),
        "not ice-chars"
    );
    assert!(server.restart_ice_offer(now).is_err(), "server side");
    assert!(
        client
            .restart_ice(now, "abcd", "0123456789012345678901")
            .is_err(),
        "client side"
    );
    server.close();
    assert!(
        server
            .restart_ice(now, "abcd", "0123456789012345678901")
            .is_err(),
        "closed"
    );
}
