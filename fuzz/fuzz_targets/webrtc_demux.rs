//! Arbitrary datagrams from arbitrary addresses into the router: it never
//! panics, routes only to registered peers, binds an address only for a
//! STUN message naming a registered ufrag, and keeps its table bounded.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use rts_webrtc::Router;
use rts_webrtc::demux::{Class, classify, local_ufrag, stun_username};

fuzz_target!(|data: &[u8]| {
    let mut router = Router::new(8);
    router.insert("abcd", 1u8);
    router.insert("efgh", 2u8);
    // Datagrams: [port byte][len byte][bytes...] repeated.
    let mut rest = data;
    while let [port, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(n);
        rest = next;
        let from = SocketAddr::from(([127, 0, 0, 1], 40_000 + u16::from(*port)));
        let before = router.addresses();
        let routed = router.route(from, datagram);
        assert!(matches!(routed, None | Some(1) | Some(2)));
        assert!(router.addresses() <= 8);
        if router.addresses() > before {
            // A new binding needs a STUN message naming a known ufrag.
            assert_eq!(classify(datagram), Class::Stun);
            let user = stun_username(datagram).expect("binding came from a USERNAME");
            assert!(matches!(local_ufrag(user), "abcd" | "efgh"));
        }
        if let Some(user) = stun_username(datagram) {
            // The username is a slice of the datagram.
            assert!(user.len() <= datagram.len());
        }
    }
});
