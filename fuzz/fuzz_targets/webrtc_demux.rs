//! Arbitrary datagrams from arbitrary addresses into the router: it never
//! panics, routes only to registered peers, binds an address only for a
//! binding request whose MESSAGE-INTEGRITY verifies with a registered
//! peer's password, and keeps its tables bounded. Some inputs are turned
//! into correctly signed requests, so the binding path is reached too.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use rts_webrtc::Router;
use rts_webrtc::demux::{StunView, append_message_integrity, local_ufrag};

const PEERS: [(&str, &str, u8); 2] = [
    ("abcd", "password-a-0123456789ab", 1),
    ("efgh", "password-e-0123456789ab", 2),
];

fuzz_target!(|data: &[u8]| {
    let mut router = Router::new(8, 3);
    for (u, p, k) in PEERS {
        router.insert(u, p, k);
    }
    // Datagrams: [port byte][flags byte][len byte][bytes...] repeated.
    let mut rest = data;
    while let [port, flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(n);
        rest = next;
        let from = SocketAddr::from(([127, 0, 0, 1], 40_000 + u16::from(*port)));
        let mut datagram = body.to_vec();
        if flags & 1 == 1 && StunView::parse(&datagram).is_some() {
            // Sign it as the peer its flags pick.
            let (_, pwd, _) = PEERS[usize::from(flags >> 1) % 2];
            append_message_integrity(&mut datagram, pwd);
        }
        let before = router.addresses();
        let routed = router.route(from, &datagram);
        assert!(routed.is_none_or(|r| r.key == 1 || r.key == 2));
        assert!(router.addresses() <= 8);
        assert!(router.addresses_of(&1) <= 3 && router.addresses_of(&2) <= 3);
        if let Some(r) = routed
            && r.authenticated
        {
            // Only a binding request naming a peer, signed with its password.
            let view = StunView::parse(&datagram).expect("stun");
            assert!(view.is_binding_request());
            let user = view.username.expect("a username");
            let (_, pwd, key) = PEERS
                .iter()
                .copied()
                .find(|(u, _, _)| *u == local_ufrag(user))
                .expect("a registered ufrag");
            assert_eq!(key, r.key);
            assert!(view.verify(&datagram, pwd));
        }
        if router.addresses() > before {
            assert!(routed.is_some_and(|r| r.authenticated));
        }
    }
});
