//! WebRTC play (ARTC): WHEP over HTTP (rts-whip), peers over one UDP socket
//! (rts-webrtc), fed by each stream's conversion [`branch`](crate::branch).
//!
//! `POST /{app}/{stream}/whep?auth_key=…` is checked like every play URL
//! (the signed uri is `/{app}/{stream}`, the `artc://` path; `Authorization:
//! Bearer {auth_key}` works too). The first WebRTC viewer of a stream starts
//! its branch; the branch's packets go to every connected viewer's bounded
//! [`ViewerQueue`], and each viewer's peer only rewrites payload type and
//! SSRC and encrypts. The last viewer to leave stops the branch.
//!
//! A new viewer gets its first picture fast: while the branch transcodes it
//! asks the encoder for an IDR (at most one every
//! [`KEYFRAME_INTERVAL`]); in passthrough it starts from the packets of the
//! cached GOP. PLI and FIR from viewers are handled the same way.
//!
//! When the publisher leaves, viewers keep their session through the grace
//! period: a publisher that comes back continues their stream with no
//! renegotiation. When the stream ends, their sessions are closed.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use bytes::BytesMut;
use rts_auth::urls::Protocol as UrlProtocol;
use rts_h264::Mode;
use rts_webrtc::fanout::Queued;
use rts_webrtc::udp::BatchSender;
use rts_webrtc::{Certificate, Event, MediaKind, Peer, Role, Router, ViewerQueue};
use rts_whip::{Backend, CreateError, Denied, IceParams, Kind, ResourceId, SdpFrag, Target};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, watch};

use crate::branch::{self, Branch, BranchOut, Converter, Delivery, Media};
use crate::config::Config;
use crate::hub::{Hub, Protocol, StreamKey};
use crate::metrics::ErrorKind;
use crate::{Shared, access};

/// Packets a viewer's send queue holds before it drops to the next keyframe.
const VIEWER_QUEUE: usize = 4096;
/// Packets of the current GOP kept for new viewers (passthrough).
const GOP_PACKETS: usize = 8192;
/// Keyframe requests to the transcoder are at most this frequent.
pub(crate) const KEYFRAME_INTERVAL: Duration = Duration::from_millis(300);
/// Datagrams taken from the socket per loop turn, beyond the first.
const RECV_BATCH: usize = 256;
/// A peer that sends nothing for this long is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Which branch: a stream, converted for browsers or as published
/// (`?passthrough=1`: a player that decodes B-frames itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FanKey {
    stream: StreamKey,
    delivery: Delivery,
}

struct Session {
    key: FanKey,
    peer: Peer,
    queue: ViewerQueue,
    created: Instant,
}

/// The WebRTC side of one stream: its branch and its viewers.
struct Fan {
    branch: Branch,
    viewers: HashSet<ResourceId>,
    /// Packets since the last keyframe (passthrough start); `None` while the
    /// GOP is longer than [`GOP_PACKETS`].
    gop: Option<Vec<Queued>>,
    last_keyframe_request: Option<Instant>,
}

impl Fan {
    fn request_keyframe(&mut self, now: Instant) {
        if self
            .last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_INTERVAL)
        {
            return;
        }
        self.last_keyframe_request = Some(now);
        self.branch.control.request_keyframe();
    }
}

struct State {
    whip: rts_whip::Server,
    sessions: HashMap<ResourceId, Session>,
    router: Router<ResourceId>,
    streams: HashMap<FanKey, Fan>,
    certificate: Certificate,
}

/// The WebRTC server: the UDP socket and every session.
pub(crate) struct Rtc {
    state: Mutex<State>,
    wake: Arc<Notify>,
    socket: UdpSocket,
    addr: SocketAddr,
}

impl std::fmt::Debug for Rtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtc").field("addr", &self.addr).finish()
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A random non-zero SSRC (RFC 3550 8.1) from the OS RNG; an RNG failure
/// is an error, never a predictable SSRC.
fn random_ssrc() -> Result<u32, CreateError> {
    loop {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).map_err(|e| {
            CreateError::Unavailable(format!("no randomness for an SSRC ({e}); try again"))
        })?;
        let ssrc = u32::from_be_bytes(b);
        if ssrc != 0 {
            return Ok(ssrc);
        }
    }
}

impl Rtc {
    /// Binds the UDP socket and makes the DTLS certificate.
    pub(crate) async fn bind(config: &Config) -> Result<Rtc, crate::Error> {
        let addr = config.listen.rtc;
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| crate::Error::Bind {
                what: "WebRTC",
                addr,
                source,
            })?;
        let addr = socket.local_addr()?;
        let certificate = Certificate::generate()
            .map_err(|e| std::io::Error::other(format!("DTLS certificate: {e}")))?;
        let whip = rts_whip::Server::new(rts_whip::Config {
            max_resources: config.webrtc.max_sessions,
            ..rts_whip::Config::default()
        });
        Ok(Rtc {
            state: Mutex::new(State {
                whip,
                sessions: HashMap::new(),
                router: Router::new(config.webrtc.max_sessions.saturating_mul(4).max(16)),
                streams: HashMap::new(),
                certificate,
            }),
            wake: Arc::new(Notify::new()),
            socket,
            addr,
        })
    }

    /// The UDP address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// WHIP/WHEP requests: `/{app}/{stream}/whep[/{id}]`.
    pub(crate) async fn http(&self, shared: &Shared, req: axum::extract::Request) -> Response {
        let (parts, body) = req.into_parts();
        let limit = 64 * 1024;
        let Ok(body) = axum::body::to_bytes(body, limit).await else {
            return plain(413, "request body too large (at most 64 KiB) or unreadable");
        };
        let mut random = [0u8; 16];
        if getrandom::fill(&mut random).is_err() {
            return plain(503, "no randomness for a session id; try again");
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let response = {
            let mut guard = lock(&self.state);
            let State {
                whip,
                sessions,
                router,
                streams,
                certificate,
            } = &mut *guard;
            let mut backend = Whep {
                shared,
                host,
                sessions,
                router,
                streams,
                certificate,
                local: self.addr,
                wake: &self.wake,
                ingest: None,
                delivery: Delivery::Converted,
            };
            whip.handle(http::Request::from_parts(parts, body), &mut backend, random)
        };
        self.wake.notify_one();
        response.map(Body::from)
    }

    /// Runs the UDP side until `stop`: receive and route datagrams, fan the
    /// branches' packets out, drive timers, send.
    pub(crate) async fn run(&self, hub: Hub, mut stop: watch::Receiver<bool>) {
        let mut buf = vec![0u8; 2048];
        let mut out: Vec<(SocketAddr, BytesMut)> = Vec::new();
        // UDP GSO: a viewer's packets of a frame in one sendmsg
        // (docs/decisions/webrtc-send-batching.md); send_to when unavailable.
        let mut batch = match BatchSender::new(&self.socket) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!("webrtc: no batched UDP sends ({e}); one send_to per datagram");
                None
            }
        };
        loop {
            let next = self.turn(&hub, Instant::now(), &mut out);
            self.send_all(&mut batch, &mut out).await;
            let sleep =
                tokio::time::sleep_until(tokio::time::Instant::from_std(next.max(Instant::now())));
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    self.receive(&buf, n, from);
                    // Take what else is waiting before the next turn (which
                    // visits every session): one turn per batch, not per
                    // datagram.
                    for _ in 0..RECV_BATCH {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, from)) => self.receive(&buf, n, from),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => break,
            }
        }
        self.close_all(&mut out);
        self.send_all(&mut batch, &mut out).await;
    }

    /// Sends and clears `out`: runs of one destination in GSO batches
    /// (rts-webrtc's `BatchSender`, which falls back to one datagram per
    /// send when the kernel refuses GSO), or one `send_to` each without it.
    async fn send_all(
        &self,
        batch: &mut Option<BatchSender>,
        out: &mut Vec<(SocketAddr, BytesMut)>,
    ) {
        let Some(sender) = batch.as_mut() else {
            for (to, bytes) in out.drain(..) {
                if let Err(e) = self.socket.send_to(&bytes, to).await {
                    tracing::debug!("webrtc send to {to}: {e}");
                }
            }
            return;
        };
        let mut sent = 0usize;
        while let Some(rest) = out.get(sent..)
            && !rest.is_empty()
        {
            let r = self
                .socket
                .async_io(Interest::WRITABLE, || sender.send(&self.socket, rest))
                .await;
            match r {
                Ok(n) => sent = sent.saturating_add(n.max(1)),
                Err(e) => {
                    tracing::debug!("webrtc send: {e}");
                    sent = sent.saturating_add(1);
                }
            }
        }
        if let Some(notice) = sender.take_fallback_notice() {
            tracing::warn!("webrtc: {notice}");
        }
        out.clear();
    }

    fn receive(&self, buf: &[u8], n: usize, from: SocketAddr) {
        let Some(datagram) = buf.get(..n) else {
            return;
        };
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        if let Some(id) = s.router.route(from, datagram)
            && let Some(sess) = s.sessions.get_mut(&id)
            && let Err(e) = sess.peer.handle_receive(Instant::now(), from, datagram)
        {
            tracing::debug!("webrtc {id}: {e}");
        }
    }

    /// Shutdown: closes every session (DTLS close_notify goes out).
    fn close_all(&self, out: &mut Vec<(SocketAddr, BytesMut)>) {
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        for sess in s.sessions.values_mut() {
            sess.peer.close();
            while let Some(t) = sess.peer.poll_transmit() {
                out.push((t.destination, t.contents));
            }
        }
        s.sessions.clear();
        s.streams.clear();
    }

    /// One turn of the loop; returns when the next timer is due.
    fn turn(&self, hub: &Hub, now: Instant, out: &mut Vec<(SocketAddr, BytesMut)>) -> Instant {
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        let mut next = now.checked_add(Duration::from_millis(50)).unwrap_or(now);

        // Media from the branches.
        for (key, fan) in s.streams.iter_mut() {
            while let Ok(item) = fan.branch.rx.try_recv() {
                match item {
                    BranchOut::Media(m) => fan_out(fan, &mut s.sessions, m, now),
                    BranchOut::Ended(why) => {
                        tracing::info!(stream = %key.stream, "webrtc viewers end: {why}");
                        for id in &fan.viewers {
                            if let Some(sess) = s.sessions.get_mut(id) {
                                sess.peer.close();
                            }
                        }
                    }
                }
            }
        }

        // Sessions: timers, events, datagrams out.
        let mut closed = Vec::new();
        for (id, sess) in s.sessions.iter_mut() {
            if sess.peer.poll_timeout().is_some_and(|t| t <= now)
                && let Err(e) = sess.peer.handle_timeout(now)
            {
                tracing::debug!("webrtc {id}: {e}");
            }
            while let Some(ev) = sess.peer.poll_event() {
                let fan = s.streams.get_mut(&sess.key);
                match ev {
                    Event::Connected => {
                        tracing::info!(
                            stream = %sess.key.stream,
                            "webrtc viewer {id} connected {} ms after its offer",
                            now.saturating_duration_since(sess.created).as_millis()
                        );
                        if let Some(fan) = fan {
                            start_viewer(fan, sess, now);
                        }
                    }
                    Event::KeyframeRequested(_) => {
                        if let Some(fan) = fan {
                            fan.request_keyframe(now);
                        }
                    }
                    Event::Disconnected { reason } => {
                        tracing::info!(stream = %sess.key.stream, "webrtc viewer {id} left: {reason}");
                    }
                    _ => {}
                }
            }
            while let Some(t) = sess.peer.poll_transmit() {
                out.push((t.destination, t.contents));
            }
            if sess.peer.is_closed() {
                closed.push(*id);
            } else if let Some(t) = sess.peer.poll_timeout() {
                next = next.min(t);
            }
        }
        for id in closed {
            let Some(sess) = s.sessions.remove(&id) else {
                continue;
            };
            s.router.remove(&id);
            s.whip.remove(id);
            let Some(fan) = s.streams.get_mut(&sess.key) else {
                continue;
            };
            fan.viewers.remove(&id);
            if fan.viewers.is_empty() {
                // The last viewer of this branch left: it stops (dropped).
                s.streams.remove(&sess.key);
            }
            update_counts(hub, &s.streams, &sess.key.stream);
        }
        next
    }
}

/// Shows the stream's WebRTC viewers (all its branches) in the hub.
fn update_counts(hub: &Hub, streams: &HashMap<FanKey, Fan>, stream: &StreamKey) {
    let mut viewers = 0u64;
    let mut running = false;
    for (k, fan) in streams {
        if k.stream == *stream {
            viewers = viewers.saturating_add(fan.viewers.len() as u64);
            running = running || k.delivery == Delivery::Converted;
        }
    }
    hub.update_webrtc(stream, |c, v| {
        *v = viewers;
        c.running = running;
    });
}

/// A viewer is connected: it starts at a keyframe, made now by the
/// transcoder or taken from the cached GOP.
fn start_viewer(fan: &mut Fan, sess: &mut Session, now: Instant) {
    if fan.branch.control.transcoding() {
        fan.request_keyframe(now);
    } else if let Some(gop) = &fan.gop {
        for item in gop {
            sess.queue.push(item.clone());
        }
        send_queued(sess, now);
    }
}

fn send_queued(sess: &mut Session, now: Instant) {
    while let Some(item) = sess.queue.pop() {
        if let Err(e) = sess.peer.send_rtp(now, item.kind, &item.packet) {
            tracing::debug!("webrtc send_rtp: {e}");
        }
    }
}

fn fan_out(fan: &mut Fan, sessions: &mut HashMap<ResourceId, Session>, m: Media, now: Instant) {
    let items: Vec<Queued> = match m {
        Media::Video { packets, keyframe } => packets
            .into_iter()
            .enumerate()
            .map(|(i, packet)| Queued {
                kind: MediaKind::Video,
                packet,
                keyframe_start: keyframe && i == 0,
            })
            .collect(),
        Media::Audio(packet) => vec![Queued {
            kind: MediaKind::Audio,
            packet,
            keyframe_start: false,
        }],
    };
    for item in &items {
        if item.kind != MediaKind::Video {
            continue;
        }
        if item.keyframe_start {
            fan.gop = Some(Vec::new());
        }
        if let Some(gop) = &mut fan.gop {
            if gop.len() >= GOP_PACKETS {
                fan.gop = None;
            } else {
                gop.push(item.clone());
            }
        }
    }
    for id in &fan.viewers {
        let Some(sess) = sessions.get_mut(id) else {
            continue;
        };
        if !sess.peer.is_connected() {
            continue;
        }
        for item in &items {
            sess.queue.push(item.clone());
        }
        send_queued(sess, now);
    }
}

fn plain(status: u16, text: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(format!("{text}\n")))
        .unwrap_or_default()
}

/// The rts-whip backend of one request.
struct Whep<'a> {
    shared: &'a Shared,
    host: Option<String>,
    sessions: &'a mut HashMap<ResourceId, Session>,
    router: &'a mut Router<ResourceId>,
    streams: &'a mut HashMap<FanKey, Fan>,
    certificate: &'a Certificate,
    local: SocketAddr,
    wake: &'a Arc<Notify>,
    /// The ingest domain `authorize` resolved.
    ingest: Option<String>,
    /// `?passthrough=1`: the video as published for this viewer.
    delivery: Delivery,
}

impl Whep<'_> {
    /// ICE host candidates: configured, else the bound IP, else the IP the
    /// client used to reach us, plus loopback.
    fn candidates(&self) -> Vec<SocketAddr> {
        let port = self.local.port();
        let configured = &self.shared.config.webrtc.candidates;
        if !configured.is_empty() {
            return configured
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect();
        }
        if !self.local.ip().is_unspecified() {
            return vec![self.local];
        }
        let mut out = Vec::new();
        if let Some(ip) = self
            .host
            .as_deref()
            .map(crate::config::strip_port)
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<IpAddr>().ok())
            .filter(|ip| !ip.is_unspecified())
        {
            out.push(SocketAddr::new(ip, port));
        }
        let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        if !out.contains(&loopback) {
            out.push(loopback);
        }
        out
    }

    fn start_branch(&mut self, fan: &FanKey) -> Result<(), CreateError> {
        if self.streams.contains_key(fan) {
            return Ok(());
        }
        let key = &fan.stream;
        let hub = &self.shared.hub;
        let viewer = hub
            .play(key, Protocol::Conversion, Instant::now())
            .map_err(|_| CreateError::NotFound(format!("{}/{}", key.app, key.stream)))?;
        let w = &self.shared.config.webrtc;
        let mut mode = Mode::from(w.bframes);
        if mode == Mode::Auto
            && hub
                .stream(key, Instant::now())
                .is_some_and(|info| info.b_frames)
        {
            // B-frames seen already: transcode from the cached GOP on, instead
            // of passing it through and decoding it again at the first B.
            mode = Mode::Transcode;
        }
        let bitrate = (w.transcode_kbps > 0).then(|| w.transcode_kbps.saturating_mul(1000));
        let converter = Converter::new(mode, bitrate, fan.delivery)
            .map_err(|e| CreateError::Unavailable(format!("cannot start the conversion: {e}")))?;
        let branch = branch::spawn(
            key.clone(),
            viewer,
            hub.clone(),
            converter,
            self.wake.clone(),
        )
        .map_err(|e| CreateError::Unavailable(format!("cannot start the conversion: {e}")))?;
        if fan.delivery == Delivery::Converted {
            hub.update_webrtc(key, |c, _| {
                c.running = true;
                c.starts = c.starts.saturating_add(1);
            });
        }
        self.streams.insert(
            fan.clone(),
            Fan {
                branch,
                viewers: HashSet::new(),
                gop: None,
                last_keyframe_request: None,
            },
        );
        Ok(())
    }
}

impl Backend for Whep<'_> {
    fn authorize(&mut self, request: &http::request::Parts, target: &Target) -> Result<(), Denied> {
        if target.kind == Kind::Whip {
            // WHIP ingest is refused in `create` (with 503 and the reason).
            return Ok(());
        }
        let query = request.uri.query().unwrap_or("");
        // OBS and WHEP players send the key as a bearer token.
        let bearer = request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| format!("auth_key={}", t.trim()));
        let mut queries = vec![query];
        if let Some(b) = &bearer {
            queries.push(b);
        }
        let metrics = self.shared.hub.metrics();
        match access::play(
            &self.shared.config,
            self.host.as_deref(),
            UrlProtocol::Artc,
            &target.app,
            &target.stream,
            &queries,
            access::unix_now(),
        ) {
            Ok(play) => {
                self.ingest = Some(play.ingest);
                let passthrough = crate::config::query_param(query, "passthrough")
                    .is_some_and(|v| v == "1" || v == "true");
                self.delivery = if passthrough {
                    Delivery::AsPublished
                } else {
                    Delivery::Converted
                };
                Ok(())
            }
            Err(access::Refusal { kind, reason: why }) => {
                metrics.error(kind);
                tracing::info!(
                    app = target.app,
                    stream = target.stream,
                    "whep refused: {why}"
                );
                Err(Denied::forbidden(why))
            }
        }
    }

    fn create(
        &mut self,
        target: &Target,
        offer: &str,
        id: ResourceId,
    ) -> Result<String, CreateError> {
        if target.kind == Kind::Whip {
            return Err(CreateError::Unavailable(
                "WHIP ingest is not served by rts-server yet: publish over RTMP".into(),
            ));
        }
        let ingest = self
            .ingest
            .take()
            .ok_or_else(|| CreateError::Unavailable("request was not authorized".into()))?;
        let stream = StreamKey::new(&ingest, &target.app, &target.stream);
        let hub = &self.shared.hub;
        if hub.stream(&stream, Instant::now()).is_none() {
            hub.metrics().error(ErrorKind::NotFound);
            return Err(CreateError::NotFound(format!(
                "{}/{}",
                target.app, target.stream
            )));
        }
        let candidates = self.candidates();
        let config = rts_webrtc::Config {
            local_addr: candidates.first().copied().unwrap_or(self.local),
            candidates,
            certificate: self.certificate.clone(),
            // Empty: the stack generates random credentials, and new ones
            // at each ICE restart (it cannot be handed new ones later).
            ice_ufrag: String::new(),
            ice_pwd: String::new(),
            video_ssrc: random_ssrc()?,
            audio_ssrc: random_ssrc()?,
            idle_timeout: IDLE_TIMEOUT,
            stats_interval: Duration::from_secs(1),
        };
        let (peer, answer) = Peer::accept(Instant::now(), offer, Role::Viewer, &config)
            .map_err(|e| CreateError::BadSdp(e.to_string()))?;
        let key = FanKey {
            stream,
            delivery: self.delivery,
        };
        self.start_branch(&key)?;
        self.router.insert(peer.ice_ufrag(), id);
        self.sessions.insert(
            id,
            Session {
                key: key.clone(),
                peer,
                queue: ViewerQueue::new(VIEWER_QUEUE),
                created: Instant::now(),
            },
        );
        if let Some(fan) = self.streams.get_mut(&key) {
            fan.viewers.insert(id);
        }
        update_counts(hub, self.streams, &key.stream);
        tracing::info!(
            stream = %key.stream,
            delivery = ?key.delivery,
            "webrtc viewer {id} offered"
        );
        Ok(answer)
    }

    fn trickle(&mut self, _: ResourceId, _: &SdpFrag) -> Result<(), CreateError> {
        // ICE-lite: the client's checks find us; its candidates are not needed.
        Ok(())
    }

    fn restart_ice(&mut self, id: ResourceId, frag: &SdpFrag) -> Result<IceParams, CreateError> {
        let ice = frag.ice.as_ref().ok_or_else(|| {
            CreateError::BadSdp("an ICE restart needs ice-ufrag and ice-pwd".into())
        })?;
        let session = self
            .sessions
            .get_mut(&id)
            .filter(|s| !s.peer.is_closed())
            .ok_or_else(|| CreateError::NotFound(format!("session {id}")))?;
        let ours = session
            .peer
            .restart_ice(Instant::now(), &ice.ufrag, &ice.pwd)
            .map_err(|e| CreateError::BadSdp(e.to_string()))?;
        // Checks with the old username are dropped from now on; the bound
        // address keeps routing DTLS/SRTP to the session.
        self.router.replace_ufrag(&id, &ours.ufrag);
        tracing::info!("webrtc viewer {id}: ICE restart");
        Ok(IceParams {
            ufrag: ours.ufrag,
            pwd: ours.pwd,
        })
    }

    fn delete(&mut self, id: ResourceId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.peer.close();
        }
    }
}
