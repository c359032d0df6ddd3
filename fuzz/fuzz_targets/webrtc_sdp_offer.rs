//! Any offer text: the codec/direction check never panics and agrees with
//! the payload-type map; offers that pass it are answered by the full peer,
//! and every answer is ICE-lite, DTLS-passive and carries only our codecs.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rts_webrtc::sdp::{self, Codec, MediaKind};
use rts_webrtc::{Certificate, Config, Peer, Role};

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        let addr = "127.0.0.1:8000".parse().unwrap();
        Config {
            local_addr: addr,
            candidates: vec![addr],
            certificate: Certificate::generate().unwrap(),
            ice_ufrag: "fuzzufrag".into(),
            ice_pwd: "fuzz-password-0123456789ab".into(),
            video_ssrc: 1,
            audio_ssrc: 2,
            idle_timeout: Duration::from_secs(10),
            stats_interval: Duration::from_secs(1),
            tcp_candidates: vec![addr],
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(summary) = sdp::summarize(&text) else {
        return;
    };
    let pts = sdp::payload_types(&text);
    for (i, m) in summary.media.iter().enumerate() {
        // A usable payload type is an H.264 or Opus rtpmap of its kind.
        for pt in &m.usable {
            let codec = m.codecs.get(pt).copied().expect("usable pt is mapped");
            match m.kind {
                MediaKind::Video => assert_eq!(codec, Codec::H264),
                MediaKind::Audio => assert_eq!(codec, Codec::Opus),
            }
        }
        // The flat map agrees for payload types no later m-line maps again
        // (RFC 8843 9.1: in a BUNDLE a payload type means one codec).
        for (pt, codec) in &m.codecs {
            let later = summary.media[i + 1..]
                .iter()
                .any(|l| l.codecs.contains_key(pt));
            if !later {
                assert_eq!(pts.get(pt), Some(&(m.kind, *codec)));
            }
        }
    }
    for role in [Role::Viewer, Role::Publisher] {
        if let Ok((_peer, answer)) = Peer::accept(Instant::now(), &text, role, config()) {
            assert!(answer.contains("a=ice-lite"));
            assert!(answer.contains("a=setup:passive"));
            for (_, codec) in sdp::payload_types(&answer).values() {
                assert!(
                    matches!(codec, Codec::H264 | Codec::Opus | Codec::Rtx),
                    "{answer}"
                );
            }
        }
    }
});
