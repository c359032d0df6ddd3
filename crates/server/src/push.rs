//! Push: an ingest domain's `push = [{ url = "rtmp://host/app" }]` publishes
//! every stream of it to each remote RTMP server too (as `app/{stream}`,
//! signed with `key` when the remote signs as rts does), so a stream, or a
//! relayed one, reaches another server.
//!
//! A supervisor looks at the hub twice a second; each (stream, target) is
//! one task that keeps a hub viewer of the stream (the conversion kind, not
//! counted as a viewer) and an RTMP client session (rts-rtmp's
//! `ClientSession` on a tokio socket). A connection that fails or ends is
//! tried again after a back-off (1 s, doubling, at most 30 s) while the
//! stream lasts; every step shows in the API (`pushes` of the stream).
//! Connecting and starting the publish have deadlines; a remote that stops
//! reading makes the hub end the viewer for falling behind, which ends the
//! connection too (the next one starts from the live GOP).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rts_flv::ScriptData;
use rts_rtmp::session::{ClientEvent, ClientSession, Config as RtmpConfig, MediaKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::Shared;
use crate::config::Push;
use crate::hub::{Frame, FrameKind, Hub, Protocol, StreamKey};

/// How often the supervisor looks for streams to push.
const SCAN: Duration = Duration::from_millis(500);
/// TCP connect and RTMP handshake + publish, each at most.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Back-off between attempts: first, and at most.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Frames taken from the hub per wake-up.
const BATCH: usize = 256;

/// Pushes every stream its ingest domain says to, until `stop`.
pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    if shared.config.domains.iter().all(|d| d.push.is_empty()) {
        return;
    }
    let active: Arc<Mutex<HashSet<(StreamKey, String)>>> = Arc::default();
    let mut every = tokio::time::interval(SCAN);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        for info in shared.hub.streams(Instant::now()) {
            if !info.publishing {
                continue;
            }
            let Some(domain) = shared.config.domain(&info.domain) else {
                continue;
            };
            for target in &domain.push {
                let key = StreamKey::new(&info.domain, &info.app, &info.stream);
                let entry = (key.clone(), target.url.clone());
                if !active
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(entry.clone())
                {
                    continue;
                }
                let (hub, active, stop, target) = (
                    shared.hub.clone(),
                    active.clone(),
                    stop.clone(),
                    target.clone(),
                );
                tokio::spawn(async move {
                    push(&hub, &key, &target, stop).await;
                    active
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&entry);
                });
            }
        }
    }
}

/// Where one push goes.
struct Remote {
    /// `host:port`.
    addr: String,
    tc_url: String,
    app: String,
    /// The stream name with its query (`auth_key=…` when signed).
    name: String,
    /// For the API and logs: the URL without the key.
    shown: String,
}

fn remote(target: &Push, stream: &str, now_unix: u64) -> Result<Remote, String> {
    let rest = target
        .url
        .strip_prefix("rtmp://")
        .ok_or("not an rtmp:// URL")?;
    let (authority, app) = rest.split_once('/').ok_or("no /app in the URL")?;
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:1935")
    };
    let name = match &target.key {
        Some(key) => {
            let auth = rts_auth::sign(&format!("/{app}/{stream}"), now_unix, "0", "0", key)
                .map_err(|e| format!("cannot sign the push URL: {e}"))?;
            format!("{stream}?auth_key={auth}")
        }
        None => stream.to_owned(),
    };
    Ok(Remote {
        addr,
        tc_url: format!("rtmp://{authority}/{app}"),
        app: app.to_owned(),
        name,
        shown: format!("rtmp://{authority}/{app}/{stream}"),
    })
}

/// Pushes `key` to `target` until the stream ends or `stop`, connecting
/// again after failures.
async fn push(hub: &Hub, key: &StreamKey, target: &Push, mut stop: watch::Receiver<bool>) {
    let shown = remote(target, &key.stream, 0)
        .map(|r| r.shown)
        .unwrap_or_else(|_| target.url.clone());
    let mut backoff = BACKOFF_FIRST;
    while let Some(info) = hub.stream(key, Instant::now()) {
        if !info.publishing {
            // In the grace period: wait for the publisher to come back.
            tokio::select! {
                _ = tokio::time::sleep(SCAN) => continue,
                _ = stop.changed() => break,
            }
        }
        hub.update_push(key, &shown, |p| {
            p.state = "connecting".into();
            p.attempts = p.attempts.saturating_add(1);
        });
        let started = Instant::now();
        let result = tokio::select! {
            r = connection(hub, key, target, &shown) => r,
            _ = stop.changed() => break,
        };
        let why = match result {
            Ok(Ended::Source) => break,
            Ok(Ended::Remote(why)) => why,
            Err(e) => e,
        };
        tracing::info!(stream = %key, to = %shown, "push: {why}; again in {} s", backoff.as_secs());
        hub.update_push(key, &shown, |p| {
            p.state = "retrying".into();
            p.last_error = Some(why);
        });
        // A connection that lasted resets the back-off.
        if started.elapsed() > BACKOFF_MAX {
            backoff = BACKOFF_FIRST;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => break,
        }
        backoff = backoff.saturating_mul(2).min(BACKOFF_MAX);
    }
    hub.update_push(key, &shown, |p| p.state = "ended".into());
}

/// How a connection ended without an error of its own.
enum Ended {
    /// The stream ended (after its grace period): the push is over.
    Source,
    /// The remote closed or refused: try again.
    Remote(String),
}

/// One connection: connect, publish, then the stream's frames.
async fn connection(
    hub: &Hub,
    key: &StreamKey,
    target: &Push,
    shown: &str,
) -> Result<Ended, String> {
    let r = remote(target, &key.stream, crate::access::unix_now())?;
    let mut sock = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&r.addr))
        .await
        .map_err(|_| {
            format!(
                "connect to {}: no answer in {} s",
                r.addr,
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("connect to {}: {e}", r.addr))?;
    let _ = sock.set_nodelay(true);
    let mut random = [0u8; 1528];
    getrandom::fill(&mut random).map_err(|e| format!("randomness: {e}"))?;
    let mut client = ClientSession::new(RtmpConfig::default(), &r.tc_url, &r.app, &random);
    client.publish(&r.name);
    let mut buf = vec![0u8; 16 * 1024];
    tokio::time::timeout(START_TIMEOUT, async {
        loop {
            flush(&mut client, &mut sock).await?;
            while let Some(ev) = client.poll_event() {
                match ev {
                    ClientEvent::PublishStarted { .. } => return Ok(()),
                    ClientEvent::Error(e) => {
                        return Err(format!("the remote refused the publish: {e}"));
                    }
                    ClientEvent::Closed => return Err("the remote closed the session".to_owned()),
                    _ => {}
                }
            }
            let n = sock
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the remote closed the connection".to_owned());
            }
            client.handle_input(Instant::now(), buf.get(..n).unwrap_or_default());
        }
    })
    .await
    .map_err(|_| {
        format!(
            "the publish did not start within {} s",
            START_TIMEOUT.as_secs()
        )
    })??;

    // From the live GOP on (a new viewer's queue starts with it).
    let Ok(source) = hub.play(key, Protocol::Conversion, Instant::now()) else {
        return Ok(Ended::Source);
    };
    tracing::info!(stream = %key, to = %shown, "push publishing");
    hub.update_push(key, shown, |p| {
        p.state = "publishing".into();
        p.connects = p.connects.saturating_add(1);
    });
    loop {
        tokio::select! {
            frames = source.recv(BATCH) => {
                let Ok(frames) = frames else {
                    client.close(Some(&r.name));
                    let _ = flush(&mut client, &mut sock).await;
                    return Ok(Ended::Source);
                };
                let sent = send(&mut client, frames);
                if !sent {
                    return Ok(Ended::Remote("the session stopped taking media".into()));
                }
                let n = flush(&mut client, &mut sock).await?;
                hub.update_push(key, shown, |p| p.bytes_out = p.bytes_out.saturating_add(n as u64));
            }
            read = sock.read(&mut buf) => {
                let n = read.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Ok(Ended::Remote("the remote closed the connection".into()));
                }
                client.handle_input(Instant::now(), buf.get(..n).unwrap_or_default());
                while let Some(ev) = client.poll_event() {
                    match ev {
                        ClientEvent::Error(e) => return Ok(Ended::Remote(format!("the remote said: {e}"))),
                        ClientEvent::Closed => return Ok(Ended::Remote("the remote closed the session".into())),
                        _ => {}
                    }
                }
            }
        }
    }
}

/// Queues `frames` on the session; false when it no longer takes media.
fn send(client: &mut ClientSession, frames: Vec<Frame>) -> bool {
    for f in frames {
        let ok = match f.kind {
            FrameKind::Video => client.send_media(MediaKind::Video, f.timestamp, f.payload),
            FrameKind::Audio => client.send_media(MediaKind::Audio, f.timestamp, f.payload),
            FrameKind::Metadata => match ScriptData::parse(&f.payload) {
                Ok(script) => client.send_metadata(&script.value),
                Err(_) => true,
            },
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Writes what the session has to send; returns the bytes written.
async fn flush(client: &mut ClientSession, sock: &mut TcpStream) -> Result<usize, String> {
    let mut n = 0usize;
    while let Some(b) = client.poll_transmit() {
        sock.write_all(&b)
            .await
            .map_err(|e| format!("write: {e}"))?;
        n = n.saturating_add(b.len());
    }
    Ok(n)
}
