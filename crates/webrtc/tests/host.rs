//! The [`Host`](rts_webrtc::host::Host) on a virtual clock (tests/common):
//! our clients connect through seeded loss, join a stream at a keyframe,
//! ask for keyframes, restart ICE, overflow their queue and time out; the
//! host's limits hold against unauthenticated traffic.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Net, STREAM, other_ip};
use rts_webrtc::demux::append_message_integrity;
use rts_webrtc::host::{HostConfig, HostEvent, Keyframes};

/// ICE + DTLS + first media for one viewer through `loss` percent each
/// way, for `seeds` seeds: returns the slowest time to first video.
fn connect_through_loss(loss: u64, seeds: u64, limit: Duration) -> Duration {
    let mut slowest = Duration::ZERO;
    let mut failed = Vec::new();
    for seed in 0..seeds {
        let mut net = Net::new(seed, HostConfig::default()).with_loss(loss);
        net.attach_source(STREAM, 30, 3);
        net.add_viewer(STREAM);
        let ok = net.run_until(limit, |n| n.clients[0].first_video_at.is_some());
        match net.clients[0].first_video_at {
            Some(t) if ok => slowest = slowest.max(t),
            _ => failed.push((
                seed,
                net.clients[0].connected_at,
                net.host.is_connected(&net.clients[0].id),
                net.closed_events(),
            )),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {seeds} seeds did not get media within {limit:?} at {loss}% loss each way: {failed:?}",
        failed.len()
    );
    slowest
}

#[test]
fn every_seed_connects_through_10_percent_loss_within_3_s() {
    let slowest = connect_through_loss(10, 50, Duration::from_secs(3));
    eprintln!("10% loss each way, 50 seeds: slowest first video {slowest:?}");
}

#[test]
fn every_seed_connects_through_20_percent_loss_within_6_s() {
    let slowest = connect_through_loss(20, 50, Duration::from_secs(6));
    eprintln!("20% loss each way, 50 seeds: slowest first video {slowest:?}");
}

#[test]
fn a_passthrough_viewer_starts_at_the_cached_keyframe() {
    let mut net = Net::new(1, HostConfig::default());
    net.attach_source(STREAM, 90, 2);
    net.add_viewer(STREAM);
    assert!(net.run_until(Duration::from_secs(2), |n| {
        n.clients[0].first_video_at.is_some()
    }));
    net.run_for(Duration::from_millis(700));
    // A second viewer joins mid-GOP: it gets the GOP from its keyframe.
    let late = net.add_viewer(STREAM);
    assert!(net.run_until(Duration::from_secs(4), |n| {
        n.clients[late].first_video_at.is_some()
    }));
    assert_eq!(net.clients[late].first_video_keyframe, Some(true));
    let gop_so_far = net.clients[0].video.len();
    assert!(
        net.clients[late].video.len() * 10 >= gop_so_far * 8,
        "the cached GOP came first: {} of {gop_so_far}",
        net.clients[late].video.len()
    );
    assert_eq!(
        net.keyframe_requests(),
        0,
        "a passthrough source is never asked"
    );
    net.run_for(Duration::from_millis(200));
    assert!(net.clients[late].audio >= 5, "{}", net.clients[late].audio);
}

#[test]
fn joins_and_plis_ask_an_on_request_source_coalesced() {
    let config = HostConfig {
        keyframe_interval: Duration::from_millis(300),
        ..HostConfig::default()
    };
    let mut net = Net::new(2, config);
    net.attach_source(STREAM, 300, 2);
    let a = net.add_viewer(STREAM);
    net.source_on_request();
    assert!(net.run_until(Duration::from_secs(2), |n| {
        n.clients[a].first_video_at.is_some()
    }));
    assert_eq!(net.clients[a].first_video_keyframe, Some(true));
    let after_join = net.keyframe_requests();
    assert_eq!(after_join, 1, "one request for the new viewer");
    net.run_for(Duration::from_millis(500));
    assert_eq!(net.keyframe_requests(), 1);
    // Three PLIs within 100 ms: one request now, one when the interval ends.
    for _ in 0..3 {
        net.clients[a].peer.request_keyframe(net.now).unwrap();
        net.run_for(Duration::from_millis(30));
    }
    net.run_for(Duration::from_millis(40));
    let burst = net.keyframe_requests() - after_join;
    assert_eq!(burst, 1, "coalesced within the interval");
    net.run_for(Duration::from_millis(400));
    assert_eq!(
        net.keyframe_requests() - after_join,
        2,
        "the rest after the interval"
    );
    net.run_for(Duration::from_secs(1));
    assert_eq!(
        net.keyframe_requests() - after_join,
        2,
        "nothing more without a PLI"
    );
}

#[test]
fn a_forwarded_stream_starts_viewers_from_the_gop_and_asks_the_publisher() {
    let mut net = Net::new(1, HostConfig::default());
    // The publisher keeps its own GOP (3 s here) whatever it is asked.
    net.attach_source(STREAM, 90, 2);
    let a = net.add_viewer(STREAM);
    // As the server does: set once the stream's first viewer made its fan.
    net.host.set_keyframes(&STREAM, Keyframes::Forwarded);
    assert!(net.run_until(Duration::from_secs(3), |n| {
        n.clients[a].first_video_at.is_some()
    }));
    let after_first = net.keyframe_requests();
    assert!(after_first >= 1, "the new viewer asked the publisher");
    net.run_for(Duration::from_millis(700));
    // Mid-GOP: the late viewer starts at once from the cached keyframe
    // and the publisher is asked again.
    let late = net.add_viewer(STREAM);
    assert!(net.run_until(Duration::from_secs(2), |n| {
        n.clients[late].first_video_at.is_some()
    }));
    assert_eq!(net.clients[late].first_video_keyframe, Some(true));
    let gop_so_far = net.clients[a].video.len();
    assert!(
        net.clients[late].video.len() * 10 >= gop_so_far * 8,
        "the cached GOP came first: {} of {gop_so_far}",
        net.clients[late].video.len()
    );
    assert!(net.keyframe_requests() > after_first);
    // A viewer's PLI goes to the publisher too.
    let before = net.keyframe_requests();
    net.run_for(Duration::from_millis(400));
    net.clients[late].peer.request_keyframe(net.now).unwrap();
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.keyframe_requests(), before + 1);
}

#[test]
fn ice_restart_keeps_media_and_drops_the_old_username() {
    let mut net = Net::new(3, HostConfig::default());
    net.attach_source(STREAM, 30, 2);
    let c = net.add_viewer(STREAM);
    assert!(net.run_until(Duration::from_secs(2), |n| {
        n.clients[c].first_video_at.is_some()
    }));
    let id = net.clients[c].id;
    let before = net.clients[c].video.len();
    let old_server = net.host.session(&id).map(|(_, n)| n);
    assert_eq!(old_server, Some(0));
    let ours = net.clients[c].peer.restart_ice_offer(net.now).unwrap();
    let theirs = net
        .host
        .restart_ice(net.now, id, &ours.ufrag, &ours.pwd)
        .unwrap();
    net.clients[c]
        .peer
        .restart_ice_answer(net.now, &theirs.ufrag, &theirs.pwd)
        .unwrap();
    assert_eq!(
        net.host.session(&id).map(|(_, n)| n),
        Some(1),
        "ETag generation"
    );
    net.run_for(Duration::from_secs(2));
    assert!(
        net.clients[c].video.len() > before + 80,
        "media kept flowing: {} then {}",
        before,
        net.clients[c].video.len()
    );
    assert!(net.host.is_connected(&id));
}

#[test]
fn a_gop_larger_than_the_queue_waits_for_the_next_keyframe() {
    let config = HostConfig {
        viewer_queue: 16,
        ..HostConfig::default()
    };
    let mut net = Net::new(4, config);
    net.attach_source(STREAM, 60, 4);
    net.add_viewer(STREAM);
    assert!(net.run_until(Duration::from_secs(2), |n| {
        n.clients[0].first_video_at.is_some()
    }));
    net.run_for(Duration::from_millis(800)); // 24 frames, 96 packets cached
    let late = net.add_viewer(STREAM);
    assert!(net.run_until(Duration::from_secs(5), |n| {
        n.clients[late].first_video_at.is_some()
    }));
    assert!(net.host.stats().viewer_overflows >= 1);
    // It started at the next keyframe, not in the middle of the GOP.
    assert_eq!(net.clients[late].first_video_keyframe, Some(true));
    assert!(net.clients[late].first_video_at.unwrap() >= Duration::from_millis(1900));
}

#[test]
fn a_session_that_never_connects_is_removed_after_the_deadline() {
    let config = HostConfig {
        connect_timeout: Duration::from_secs(10),
        ..HostConfig::default()
    };
    let mut net = Net::new(5, config);
    net.attach_source(STREAM, 30, 1);
    // Everything from the client is lost: ICE never completes.
    net.loss_up = 1000;
    let c = net.add_viewer(STREAM);
    let id = net.clients[c].id;
    net.run_for(Duration::from_millis(9900));
    assert!(net.host.session(&id).is_some(), "still waiting at 9.9 s");
    assert_eq!(net.host.pending_from(net.clients[c].addr.ip()), 1);
    net.run_for(Duration::from_millis(300));
    assert!(net.host.session(&id).is_none());
    assert_eq!(net.host.pending_from(net.clients[c].addr.ip()), 0);
    assert_eq!(net.host.stats().connect_timeouts, 1);
    assert!(
        net.closed_events()
            .iter()
            .any(|(i, r)| *i == id && r.contains("did not complete"))
    );
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, HostEvent::StreamIdle { stream } if *stream == STREAM))
    );
}

#[test]
fn a_connected_viewer_that_goes_silent_times_out() {
    let mut net = Net::new(6, HostConfig::default());
    net.attach_source(STREAM, 30, 1);
    let c = net.add_viewer(STREAM);
    assert!(net.run_until(Duration::from_secs(2), |n| {
        n.clients[c].first_video_at.is_some()
    }));
    let id = net.clients[c].id;
    net.loss_up = 1000; // the viewer's network is gone
    net.run_for(Duration::from_secs(14));
    assert!(
        net.host.session(&id).is_some(),
        "within the 15 s idle timeout"
    );
    net.run_for(Duration::from_secs(2));
    assert!(net.host.session(&id).is_none());
    assert!(net.closed_events().iter().any(|(i, _)| *i == id));
}

/// A binding request to the session's ufrag without MESSAGE-INTEGRITY, or
/// with a wrong one, from thousands of ports.
fn forged_check(username: &str, password: Option<&str>, n: u32) -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(&n.to_be_bytes());
    m.extend_from_slice(&[9; 8]);
    m.extend_from_slice(&[0x00, 0x06]);
    m.extend_from_slice(&(username.len() as u16).to_be_bytes());
    m.extend_from_slice(username.as_bytes());
    while m.len() % 4 != 0 {
        m.push(0);
    }
    let len = (m.len() - 20) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    if let Some(p) = password {
        append_message_integrity(&mut m, p);
    }
    m
}

#[test]
fn unauthenticated_checks_neither_bind_nor_keep_a_session_alive() {
    let config = HostConfig {
        connect_timeout: Duration::from_secs(10),
        ..HostConfig::default()
    };
    let mut net = Net::new(7, config);
    net.attach_source(STREAM, 30, 1);
    net.loss_up = 1000; // the real client is never heard
    let c = net.add_viewer(STREAM);
    let id = net.clients[c].id;
    // The attacker read the answer: it knows the ufrag, not the password.
    let (ufrag, _) = rts_webrtc::sdp::ice_credentials(&net.clients[c].answer).unwrap();
    let user = format!("{ufrag}:attacker");
    let mut dropped_before = net.host.stats().datagrams_dropped;
    for i in 0..2000u32 {
        let from = SocketAddr::from(([127, 0, 0, 9], 10_000 + (i % 5000) as u16));
        let pwd = if i % 2 == 0 {
            None
        } else {
            Some("wrong-password-012345678")
        };
        net.host
            .handle_datagram(net.now, from, &forged_check(&user, pwd, i));
        if i % 200 == 0 {
            net.run_for(Duration::from_millis(500));
            let d = net.host.stats().datagrams_dropped;
            assert!(d > dropped_before);
            dropped_before = d;
        }
    }
    assert_eq!(net.host.stats().datagrams_dropped, 2000);
    // Nothing bound, nothing kept it alive: it is gone at the deadline.
    net.run_until(Duration::from_secs(11), |n| n.host.session(&id).is_none());
    assert!(net.host.session(&id).is_none());
}

#[test]
fn pending_sessions_are_bounded_per_ip_and_a_new_viewer_still_plays() {
    let config = HostConfig {
        max_pending_per_ip: 8,
        ..HostConfig::default()
    };
    let mut net = Net::new(8, config);
    net.attach_source(STREAM, 30, 1);
    // An attacker at another IP makes sessions that never connect.
    let mut refused = 0;
    for i in 0..50u16 {
        let addr = SocketAddr::new(other_ip(), 20_000 + i);
        match net.add_viewer_at(STREAM, addr) {
            Ok(idx) => {
                // Its client never speaks.
                net.clients[idx].peer.close();
            }
            Err(e) => {
                assert!(e.contains("still connecting"), "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 42);
    assert_eq!(net.host.pending_from(other_ip()), 8);
    let good = net.add_viewer(STREAM);
    assert!(net.run_until(Duration::from_secs(3), |n| {
        n.clients[good].first_video_at.is_some()
    }));
}

/// A session the server closes (a DELETE, a shutdown) tells its viewer at
/// once: an RTCP BYE and a DTLS close_notify, so the viewer's peer ends
/// within a second rather than at its 15 s idle timeout.
#[test]
fn closing_sends_bye_and_close_notify() {
    let mut net = Net::new(9, HostConfig::default());
    net.attach_source(STREAM, 30, 1);
    let c = net.add_viewer(STREAM);
    assert!(net.run_until(Duration::from_secs(2), |n| {
        n.clients[c].first_video_at.is_some()
    }));
    let id = net.clients[c].id;
    let at = net.now;
    net.host.close_all(at);
    assert!(net.host.session(&id).is_none());
    net.run_for(Duration::from_millis(500));
    // One for the video SSRC, one for the audio SSRC.
    assert_eq!(net.clients[c].peer.stats().byes_received, 2);
    assert_eq!(
        net.clients[c].closed,
        Some(rts_webrtc::ENDED_BY_REMOTE),
        "the viewer saw the close within 500 ms"
    );
}
