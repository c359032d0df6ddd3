//! Stream relay: a streaming domain's `relay = "<ingest domain>"` publishes
//! every stream of its own ingest domain into that other ingest domain too,
//! inside the process, so the other domain's streaming domains play it
//! (over RTMP, HTTP-FLV, WebRTC through a conversion branch) and can later
//! record or transcode it. A half-second domain gets a sub-second one's
//! features so.
//!
//! A supervisor looks at the hub twice a second; each relayed stream is one
//! task: a hub viewer of the source (the conversion kind, not counted as a
//! viewer) whose frames (shared `Bytes`, no copy) are pushed by a hub
//! publisher of the target. The viewer starts from the cached GOP; the
//! source's grace period carries through a republish; when the source ends,
//! the relay leaves the target (whose own grace period then runs). A target
//! already published by someone else is left alone and tried again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::Shared;
use crate::hub::{Hub, Protocol, StreamKey};

/// How often the supervisor looks for streams to relay.
const SCAN: Duration = Duration::from_millis(500);
/// Frames taken from the source per wake-up.
const BATCH: usize = 256;

/// Relays every stream its configuration says to, until `stop`.
pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let has_relays = shared.config.domains.iter().any(|d| d.relay.is_some());
    if !has_relays {
        return;
    }
    let active: Arc<Mutex<HashSet<(StreamKey, StreamKey)>>> = Arc::default();
    let mut every = tokio::time::interval(SCAN);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        let hub = &shared.hub;
        for info in hub.streams(Instant::now()) {
            if !info.publishing {
                continue;
            }
            for target in shared.config.relays_from(&info.domain) {
                let from = StreamKey::new(&info.domain, &info.app, &info.stream);
                let to = StreamKey::new(target, &info.app, &info.stream);
                let pair = (from, to);
                if !active
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(pair.clone())
                {
                    continue;
                }
                let (hub, active, stop) = (hub.clone(), active.clone(), stop.clone());
                tokio::spawn(async move {
                    relay(&hub, &pair.0, &pair.1, stop).await;
                    active
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&pair);
                });
            }
        }
    }
}

/// Copies `from` into `to` until the source ends, the target is taken over,
/// or `stop`.
async fn relay(hub: &Hub, from: &StreamKey, to: &StreamKey, mut stop: watch::Receiver<bool>) {
    let now = Instant::now();
    let Ok(source) = hub.play(from, Protocol::Conversion, now) else {
        return;
    };
    let mut target = match hub.publish(to.clone(), now) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(%from, %to, "relay not started: {e}");
            // Tried again at the next scan, after a pause.
            tokio::time::sleep(SCAN.saturating_mul(4)).await;
            return;
        }
    };
    tracing::info!(%from, %to, "relay started");
    let why = loop {
        let frames = tokio::select! {
            f = source.recv(BATCH) => f,
            _ = stop.changed() => break "shutdown".to_owned(),
        };
        let frames = match frames {
            Ok(f) => f,
            Err(end) => break end.to_string(),
        };
        let now = Instant::now();
        if !frames
            .into_iter()
            .all(|f| target.push(now, f.kind, f.timestamp, f.payload))
        {
            break "another publisher took the relayed stream over".to_owned();
        }
    };
    tracing::info!(%from, %to, "relay ended: {why}");
    target.leave(Instant::now());
}
