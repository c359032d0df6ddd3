//! Arbitrary datagrams (STUN-, DTLS- and SRTP-shaped, and anything else)
//! into a Host with two established viewers: from viewer A's own address
//! (bound, so they reach its peer and the stack) and from strangers. The
//! host never panics (a panic it contained would be counted), viewer B is
//! never disturbed (still connected, still receiving media), and nothing
//! from a stranger binds an address.
//!
//! Setting up two DTLS sessions costs far more than an input, so the world
//! is kept between inputs and made again only when an input ended viewer
//! A's session (a crash found this way may need the inputs before it;
//! libFuzzer's `-runs` on the crash file alone usually reproduces it).
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rts_webrtc::host::{Host, HostConfig, SessionKind};
use rts_webrtc::{Certificate, Config, Event, MediaKind, Peer, Role};

const SERVER: &str = "127.0.0.1:8000";

fn certificate() -> &'static Certificate {
    static C: OnceLock<Certificate> = OnceLock::new();
    C.get_or_init(|| Certificate::generate().expect("certificate"))
}

fn config(local: SocketAddr, ssrc: u32) -> Config {
    Config {
        local_addr: local,
        candidates: vec![local],
        certificate: certificate().clone(),
        ice_ufrag: String::new(),
        ice_pwd: String::new(),
        video_ssrc: ssrc,
        audio_ssrc: ssrc + 1,
        idle_timeout: Duration::from_secs(30),
        stats_interval: Duration::from_secs(1),
        tcp_candidates: Vec::new(),
    }
}

struct World {
    seq: u16,
    now: Instant,
    host: Host<u8, u8>,
    clients: Vec<(SocketAddr, Peer, u64)>,
    server: SocketAddr,
}

impl World {
    /// Moves every datagram (no loss) until nothing is left, then 5 ms on.
    fn step(&mut self) {
        for _ in 0..64 {
            let mut moved = false;
            while let Some(t) = self.host.poll_transmit() {
                moved = true;
                if let Some((_, peer, _)) = self.clients.iter_mut().find(|c| c.0 == t.destination) {
                    let _ = peer.handle_receive(self.now, self.server, &t.contents);
                }
            }
            for (addr, peer, video) in &mut self.clients {
                while let Some(t) = peer.poll_transmit() {
                    moved = true;
                    self.host.handle_datagram(self.now, *addr, &t.contents);
                }
                while let Some(ev) = peer.poll_event() {
                    if matches!(
                        ev,
                        Event::Rtp {
                            kind: MediaKind::Video,
                            ..
                        }
                    ) {
                        *video += 1;
                    }
                }
            }
            while self.host.poll_event().is_some() {}
            if !moved {
                break;
            }
        }
        self.now += Duration::from_millis(5);
        self.host.handle_timeout(self.now);
        for (_, peer, _) in &mut self.clients {
            let _ = peer.handle_timeout(self.now);
        }
    }

    fn media(&mut self, seq: u16) {
        let packet = rts_rtp::Packet {
            marker: true,
            payload_type: 96,
            sequence_number: seq,
            timestamp: u32::from(seq) * 3000,
            ssrc: 0,
            payload: rts_rtp::Payload::from_bytes(Bytes::from_static(&[0x65, 0x88, 0x84])),
        };
        self.host.send_video(self.now, &0, &[packet], true);
    }
}

fn world() -> Option<World> {
    let server: SocketAddr = SERVER.parse().ok()?;
    let now = Instant::now();
    let mut w = World {
        seq: 0,
        now,
        host: Host::new(HostConfig::default()),
        clients: Vec::new(),
        server,
    };
    for (n, port) in [(1u8, 50_001u16), (2, 50_002)] {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let (mut client, offer) = Peer::offer(now, Role::Publisher, &config(addr, 0)).ok()?;
        let (peer, answer) = Peer::accept(
            now,
            &offer,
            Role::Viewer,
            &config(server, 100 * u32::from(n)),
        )
        .ok()?;
        w.host
            .insert(now, n, SessionKind::Play(0), peer, addr.ip())
            .ok()?;
        client.accept_answer(now, &answer).ok()?;
        w.clients.push((addr, client, 0));
    }
    for i in 0..200 {
        w.step();
        if w.host.is_connected(&1) && w.host.is_connected(&2) && i > 10 {
            break;
        }
    }
    (w.host.is_connected(&1) && w.host.is_connected(&2)).then_some(w)
}

thread_local! {
    static WORLD: std::cell::RefCell<Option<World>> = const { std::cell::RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    WORLD.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fresh = slot
            .as_ref()
            .is_none_or(|w| !w.host.is_connected(&1) || !w.host.is_connected(&2));
        if fresh {
            *slot = Some(world().expect("two viewers connect on a perfect network"));
        }
        if let Some(w) = slot.as_mut() {
            run(w, data);
        }
    });
});

fn run(w: &mut World, data: &[u8]) {
    let a = w.clients[0].0;
    let addresses = w.host.len();
    // Datagrams: [from byte][len byte][bytes...]: even `from` is viewer A's
    // address, odd is a stranger's port.
    let mut rest = data;
    let mut seq = w.seq;
    while let [from, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(n);
        rest = next;
        let src = if from % 2 == 0 {
            a
        } else {
            SocketAddr::from(([127, 0, 0, 9], 30_000 + u16::from(*from)))
        };
        w.host.handle_datagram(w.now, src, datagram);
        w.media(seq);
        seq = seq.wrapping_add(1);
        w.step();
        assert_eq!(w.host.stats().panics, 0, "a session panicked");
    }
    let before = w.clients[1].2;
    for _ in 0..5 {
        w.media(seq);
        seq = seq.wrapping_add(1);
        w.step();
    }
    w.seq = seq;
    assert!(w.host.is_connected(&2), "viewer B was disturbed");
    assert!(w.clients[1].2 > before, "viewer B stopped receiving");
    assert!(w.host.len() <= addresses);
}
