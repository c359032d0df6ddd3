//! One RTMP connection: drives an `rts_rtmp::session::ServerSession` over a
//! TCP socket and connects it to the hub as a publisher or a player.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rts_auth::urls::Protocol as UrlProtocol;
use rts_rtmp::command::code;
use rts_rtmp::session::{self, MediaKind, ServerEvent, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::watch;

use crate::config::tc_url_host;
use crate::hub::{EndReason, FrameKind, Protocol, Publisher, StreamKey, Viewer};
use crate::metrics::{ErrorKind, Metrics};
use crate::{Shared, access};

/// Frames written to a player per wake-up.
const BATCH: usize = 64;

struct Conn {
    session: ServerSession,
    shared: Arc<Shared>,
    peer: SocketAddr,
    connect_query: String,
    /// The client's `connect` said it decodes Opus (Enhanced RTMP).
    decodes_opus: bool,
    tc_host: Option<String>,
    publisher: Option<(u32, Publisher)>,
    player: Option<(u32, Viewer)>,
    /// Close once what is queued is written.
    closing: bool,
    /// Until a publish or play is accepted: the deadline for the handshake,
    /// `connect` and that request.
    authorize_by: Option<Instant>,
}

enum Wake {
    Read(std::io::Result<usize>),
    Frames(Result<Vec<crate::hub::Frame>, EndReason>),
    Timeout,
    Unauthorized,
    Shutdown,
}

pub(crate) async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let mut random = [0u8; rts_rtmp::handshake::RANDOM_LEN];
    if let Err(e) = getrandom::fill(&mut random) {
        tracing::error!(%peer, "rtmp: no randomness for the handshake ({e}); connection closed");
        return;
    }
    let limits = shared.config.limits;
    // Small decoder limits until a publish or play is accepted; the
    // publisher's limits after.
    let cfg = session::Config {
        limits: rts_rtmp::Limits::PRE_AUTH,
        ..session::Config::default()
    };
    Metrics::add(&shared.hub.metrics().rtmp_connections, 1);
    let (mut rd, mut wr) = socket.into_split();
    let mut conn = Conn {
        session: ServerSession::new(cfg, &random),
        shared,
        peer,
        connect_query: String::new(),
        decodes_opus: false,
        tc_host: None,
        publisher: None,
        player: None,
        closing: false,
        authorize_by: Instant::now().checked_add(limits.handshake_timeout()),
    };
    let mut buf = vec![0u8; 64 * 1024];
    let write_timeout = limits.max_behind().max(Duration::from_secs(1));
    loop {
        if let Err(e) = conn.flush(&mut wr, write_timeout).await {
            tracing::debug!(peer = %conn.peer, "rtmp write: {e}");
            conn.shared.hub.metrics().error(ErrorKind::Io);
            break;
        }
        if conn.closing {
            break;
        }
        if conn.handle_events() {
            continue;
        }
        let timeout = conn.session.poll_timeout();
        let wake = {
            let frames = async {
                match &conn.player {
                    Some((_, v)) => v.recv(BATCH).await,
                    None => std::future::pending().await,
                }
            };
            let sleep = async {
                match timeout {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            let authorize_by = conn.authorize_by;
            let unauthorized = async {
                match authorize_by {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = rd.read(&mut buf) => Wake::Read(r),
                f = frames => Wake::Frames(f),
                () = sleep => Wake::Timeout,
                () = unauthorized => Wake::Unauthorized,
                _ = shutdown.changed() => Wake::Shutdown,
            }
        };
        match wake {
            Wake::Read(Ok(0)) => break,
            Wake::Read(Ok(n)) => {
                let data = buf.get(..n).unwrap_or_default();
                if conn.publisher.is_some() {
                    Metrics::add(&conn.shared.hub.metrics().bytes_in, n);
                }
                conn.session.handle_input(Instant::now(), data);
            }
            Wake::Read(Err(e)) => {
                tracing::debug!(peer = %conn.peer, "rtmp read: {e}");
                break;
            }
            Wake::Frames(Ok(frames)) => conn.send_frames(frames),
            Wake::Frames(Err(why)) => conn.play_ended(why),
            Wake::Timeout => conn.session.handle_timeout(Instant::now()),
            Wake::Unauthorized => {
                Metrics::add(&conn.shared.hub.metrics().deadline_closes, 1);
                tracing::info!(
                    peer = %conn.peer,
                    "rtmp: no publish or play accepted within {} ms of connecting; closed",
                    limits.handshake_timeout_ms
                );
                conn.session.close();
                conn.closing = true;
            }
            Wake::Shutdown => {
                // onStatus to each stream, then `close`.
                conn.session.shutdown();
                conn.closing = true;
            }
        }
    }
    if let Some((_, p)) = conn.publisher.take() {
        tracing::info!(stream = %p.key(), peer = %conn.peer, "publisher left");
        p.leave(Instant::now());
    }
    let _ = wr.shutdown().await;
}

impl Conn {
    async fn flush(&mut self, wr: &mut OwnedWriteHalf, timeout: Duration) -> std::io::Result<()> {
        while let Some(bytes) = self.session.poll_transmit() {
            match tokio::time::timeout(timeout, wr.write_all(&bytes)).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the peer did not read for too long",
                    ));
                }
            }
            if let Some((_, v)) = &self.player {
                v.count_bytes_out(bytes.len());
                Metrics::add(&self.shared.hub.metrics().bytes_out, bytes.len());
            }
        }
        Ok(())
    }

    fn send_frames(&mut self, frames: Vec<crate::hub::Frame>) {
        let Some((sid, _)) = &self.player else { return };
        let sid = *sid;
        for f in frames {
            match f.kind {
                FrameKind::Metadata => {
                    self.session.send_metadata(sid, f.payload);
                }
                FrameKind::Audio => {
                    self.session
                        .send_media(sid, MediaKind::Audio, f.timestamp, f.payload);
                }
                FrameKind::Video => {
                    self.session
                        .send_media(sid, MediaKind::Video, f.timestamp, f.payload);
                }
            }
        }
    }

    fn play_ended(&mut self, why: EndReason) {
        let Some((sid, v)) = self.player.take() else {
            return;
        };
        tracing::info!(stream = %v.key(), peer = %self.peer, "rtmp play ended: {why}");
        match why {
            EndReason::Unpublished => {
                self.session.send_unpublish_notify(sid);
            }
            EndReason::TooSlow | EndReason::Shutdown => {
                self.session.close();
                self.closing = true;
            }
        }
    }

    fn host(&self) -> Option<&str> {
        self.tc_host.as_deref()
    }

    /// A publish or play was accepted: the deadline is met, and the
    /// decoder takes the publisher's message sizes. Call before accepting
    /// (the session decodes what waited with the new limits).
    fn authorized(&mut self) {
        self.authorize_by = None;
        let limits = self.shared.config.limits;
        self.session.set_limits(rts_rtmp::Limits {
            max_message_len: u32::try_from(limits.max_message_bytes).unwrap_or(u32::MAX),
            ..rts_rtmp::Limits::default()
        });
    }

    /// This connection's publisher lost its stream to a new one (it was
    /// silent for `publisher_silence_ms`): close it.
    fn replaced(&mut self) {
        if let Some((_, p)) = self.publisher.take() {
            tracing::info!(
                stream = %p.key(),
                peer = %self.peer,
                "publisher replaced by a new one after going silent; connection closed"
            );
        }
        self.session.close();
        self.closing = true;
    }

    /// Handles every pending event; true when something was handled (there
    /// may be bytes to write).
    fn handle_events(&mut self) -> bool {
        let mut any = false;
        while let Some(ev) = self.session.poll_event() {
            any = true;
            self.handle(ev);
        }
        any
    }

    fn handle(&mut self, ev: ServerEvent) {
        let now = Instant::now();
        let metrics = self.shared.hub.metrics().clone();
        match ev {
            ServerEvent::ConnectRequested {
                query,
                tc_url,
                app,
                object,
            } => {
                self.connect_query = query;
                self.decodes_opus = rts_rtmp::command::can_decode(&object, "Opus");
                self.tc_host = tc_url.as_deref().and_then(tc_url_host).map(str::to_owned);
                tracing::debug!(peer = %self.peer, app, "rtmp connect");
                let _ = self.session.accept_connect();
            }
            ServerEvent::PublishRequested {
                stream_id,
                app,
                stream,
                query,
            } => {
                if self.publisher.is_some() || self.player.is_some() {
                    let _ = self.session.reject_publish(
                        stream_id,
                        code::PUBLISH_BAD_NAME,
                        "this connection already publishes or plays a stream",
                    );
                    return;
                }
                let queries = [query.as_str(), self.connect_query.as_str()];
                let checked = access::publish(
                    &self.shared.config,
                    self.host(),
                    access::Ingest::Rtmp,
                    &app,
                    &stream,
                    &queries,
                    access::unix_now(),
                );
                let domain = match checked {
                    Ok(d) => d,
                    Err(access::Refusal { kind, reason: why }) => {
                        metrics.error(kind);
                        tracing::info!(peer = %self.peer, app, stream, "publish refused: {why}");
                        let c = if kind == ErrorKind::Auth {
                            code::PUBLISH_UNAUTHORIZED
                        } else {
                            code::PUBLISH_BAD_NAME
                        };
                        let _ = self.session.reject_publish(stream_id, c, &why);
                        return;
                    }
                };
                let key = StreamKey::new(&domain, &app, &stream);
                match self.shared.hub.publish(key.clone(), now) {
                    Ok(p) => {
                        tracing::info!(stream = %key, peer = %self.peer, "publishing");
                        self.authorized();
                        let _ = self.session.accept_publish(stream_id);
                        self.publisher = Some((stream_id, p));
                    }
                    Err(e) => {
                        metrics.error(match e {
                            crate::hub::PublishError::AlreadyPublishing => {
                                ErrorKind::AlreadyPublishing
                            }
                            _ => ErrorKind::Unavailable,
                        });
                        tracing::info!(stream = %key, peer = %self.peer, "publish refused: {e}");
                        let _ = self.session.reject_publish(
                            stream_id,
                            code::PUBLISH_BAD_NAME,
                            &e.to_string(),
                        );
                    }
                }
            }
            ServerEvent::PlayRequested {
                stream_id,
                app,
                stream,
                query,
            } => {
                if self.publisher.is_some() || self.player.is_some() {
                    let _ = self.session.reject_play(
                        stream_id,
                        "this connection already publishes or plays a stream",
                    );
                    return;
                }
                let queries = [query.as_str(), self.connect_query.as_str()];
                let checked = access::play(
                    &self.shared.config,
                    self.host(),
                    UrlProtocol::Rtmp,
                    &app,
                    &stream,
                    &queries,
                    access::unix_now(),
                );
                let play = match checked {
                    Ok(p) => p,
                    Err(access::Refusal { kind, reason: why }) => {
                        metrics.error(kind);
                        tracing::info!(peer = %self.peer, app, stream, "play refused: {why}");
                        let _ = self.session.reject_play(stream_id, &why);
                        return;
                    }
                };
                let key = StreamKey::new(&play.ingest, &app, &stream);
                let shared = &self.shared;
                match shared
                    .aac
                    .play(&shared.hub, &key, Protocol::Rtmp, self.decodes_opus, now)
                {
                    Ok(v) => {
                        tracing::info!(stream = %key, peer = %self.peer, "rtmp play");
                        self.authorized();
                        let _ = self.session.accept_play(stream_id);
                        self.player = Some((stream_id, v));
                    }
                    Err(e) => {
                        metrics.error(ErrorKind::NotFound);
                        let _ = self
                            .session
                            .reject_play(stream_id, &format!("{e}: /{app}/{stream}"));
                    }
                }
            }
            ServerEvent::Media {
                stream_id,
                kind,
                timestamp,
                payload,
            } => {
                if let Some((sid, p)) = &mut self.publisher
                    && *sid == stream_id
                {
                    let kind = match kind {
                        MediaKind::Video => FrameKind::Video,
                        MediaKind::Audio => FrameKind::Audio,
                    };
                    if !p.push(now, kind, timestamp, payload) {
                        self.replaced();
                    }
                }
            }
            ServerEvent::Metadata {
                stream_id, payload, ..
            } => {
                if let Some((sid, p)) = &mut self.publisher
                    && *sid == stream_id
                    && !p.push(now, FrameKind::Metadata, 0, payload)
                {
                    self.replaced();
                }
            }
            ServerEvent::Unpublished { stream_id, .. }
                if self
                    .publisher
                    .as_ref()
                    .is_some_and(|(s, _)| *s == stream_id) =>
            {
                if let Some((_, p)) = self.publisher.take() {
                    tracing::info!(stream = %p.key(), peer = %self.peer, "unpublished");
                    p.leave(now);
                }
            }
            ServerEvent::PlayStopped { stream_id, .. }
                if self.player.as_ref().is_some_and(|(s, _)| *s == stream_id) =>
            {
                self.player = None;
            }
            ServerEvent::Error(e) => {
                metrics.error(ErrorKind::Protocol);
                tracing::info!(peer = %self.peer, "rtmp error: {e}");
            }
            ServerEvent::Closed => self.closing = true,
            _ => {}
        }
    }
}
