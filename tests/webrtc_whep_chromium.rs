//! Headless Chromium plays `whep-testsrc` over WHEP: rts-webrtc's answer,
//! ICE-lite, DTLS-SRTP and the H.264/Opus packetization, against a real
//! browser.

mod webrtc_common;

use std::sync::Mutex;
use std::time::Duration;

use rts_testkit::{browser, node_json};
use webrtc_common::Server;

/// One browser test at a time: frame-rate and decode-ratio figures mean
/// little when several Chromium instances starve each other on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn play(node: &std::path::Path, dir: &std::path::Path, url: &str) -> serde_json::Value {
    node_json(
        node,
        dir,
        "whep_play.js",
        &[url, "5"],
        Duration::from_secs(90),
    )
}

#[test]
fn chromium_plays_whep_testsrc() {
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let server = Server::start("whep-testsrc");
    let url = format!("http://{}/live/test/whep", server.http);

    let mut r = play(&node, &dir, &url);
    eprintln!("whep_play: {r}");
    // Time to first frame is a wall-clock figure on a machine shared with
    // builds and other interop tests: up to two retries when only that
    // limit is missed.
    for attempt in 1..=2 {
        if r["firstFrameMs"].as_f64().is_some_and(|t| t <= 500.0) {
            break;
        }
        r = play(&node, &dir, &url);
        eprintln!("whep_play (retry {attempt}): {r}");
    }
    assert_eq!(r["ok"], true, "no video decoded: {r}");
    let v = &r["video"];
    assert_eq!(v["codec"], "video/H264");
    let decoded = v["framesDecoded"].as_f64().unwrap_or(0.0);
    let received = v["framesReceived"].as_f64().unwrap_or(0.0);
    assert!(decoded >= 120.0, "only {decoded} frames decoded in 5 s");
    assert!(
        decoded / received >= 0.98,
        "decoded/received {decoded}/{received}"
    );
    let a = &r["audio"];
    assert_eq!(a["codec"], "audio/opus");
    assert!(
        a["totalSamplesReceived"].as_f64().unwrap_or(0.0) > 48_000.0,
        "no Opus decoded: {a}"
    );
    let ttff = r["firstFrameMs"].as_f64().unwrap_or(f64::MAX);
    assert!(ttff <= 500.0, "first frame {ttff} ms after the POST");
    assert_eq!(r["deleteStatus"], 200, "DELETE of the session");
}

#[test]
fn whep_for_an_unknown_stream_is_404() {
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let server = Server::start("whep-testsrc");
    let url = format!("http://{}/live/nothing/whep", server.http);
    let r = node_json(
        &node,
        &dir,
        "whep_play.js",
        &[&url, "1"],
        Duration::from_secs(60),
    );
    assert_eq!(r["ok"], false);
    let err = r["error"].as_str().unwrap_or("");
    assert!(err.contains("POST 404"), "{r}");
}

/// Two browsers at once on the server's one UDP socket: the demultiplexer
/// routes each by its ICE username, then by address.
#[test]
fn two_chromium_viewers_share_one_udp_socket() {
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let server = Server::start("whep-testsrc");
    let url = format!("http://{}/live/test/whep", server.http);
    let viewers: Vec<_> = (0..2)
        .map(|_| {
            let (node, dir, url) = (node.clone(), dir.clone(), url.clone());
            std::thread::spawn(move || {
                node_json(
                    &node,
                    &dir,
                    "whep_play.js",
                    &[&url, "3"],
                    Duration::from_secs(90),
                )
            })
        })
        .collect();
    for v in viewers {
        let r = v.join().expect("driver thread");
        eprintln!("whep_play: {r}");
        assert_eq!(r["ok"], true, "{r}");
        let decoded = r["video"]["framesDecoded"].as_f64().unwrap_or(0.0);
        let received = r["video"]["framesReceived"].as_f64().unwrap_or(0.0);
        assert!(decoded >= 60.0, "only {decoded} frames decoded in 3 s");
        assert!(
            decoded / received >= 0.9,
            "decoded/received {decoded}/{received}"
        );
        assert_eq!(r["deleteStatus"], 200);
    }
}

/// ICE restart (RFC 8445 9) from a real browser: Chromium's
/// `pc.restartIce()`, the new ice-ufrag/ice-pwd PATCHed as a
/// trickle-ice-sdpfrag with `If-Match: *` (RFC 9725 4.3), the server's new
/// credentials applied; new credentials on both sides, a new candidate pair
/// selected, and frames keep being decoded over the same DTLS/SRTP session.
#[test]
fn chromium_restarts_ice_and_keeps_playing() {
    let Some((node, dir)) = browser() else { return };
    let _serial = serial();
    let server = Server::start("whep-testsrc");
    let url = format!("http://{}/live/test/whep", server.http);
    let r = node_json(
        &node,
        &dir,
        "whep_restart.js",
        &[&url, "4"],
        Duration::from_secs(90),
    );
    eprintln!("whep_restart: {r}");
    assert_eq!(r["ok"], true, "{r}");
    let restart = &r["restart"];
    assert_eq!(restart["patchStatus"], 200, "{r}");
    assert_ne!(restart["etagBefore"], restart["etagAfter"], "new ETag");
    assert_ne!(
        restart["before"]["local"], restart["after"]["local"],
        "Chromium's new ufrag"
    );
    assert_ne!(
        restart["before"]["remote"], restart["after"]["remote"],
        "the server's new ufrag"
    );
    let at = &r["atRestart"];
    let after = &r["afterRestart"];
    assert_eq!(after["connectionState"], "connected");
    assert!(
        after["selectedCandidatePairChanges"].as_u64()
            > at["selectedCandidatePairChanges"].as_u64(),
        "a new pair was selected after the restart: {r}"
    );
    let decoded = after["framesDecoded"].as_f64().unwrap_or(0.0)
        - at["framesDecoded"].as_f64().unwrap_or(0.0);
    assert!(
        decoded >= 60.0,
        "only {decoded} frames decoded in the 4 s after the restart"
    );
    assert_eq!(r["deleteStatus"], 200);
}
