//! WebRTC play (ARTC): the server's thin driver of rts-webrtc's
//! [`Host`], plus each stream's conversion [`branch`](crate::branch).
//!
//! `POST /{app}/{stream}/whep?auth_key=…` is checked like every play URL
//! (the signed uri is `/{app}/{stream}`, the `artc://` path; `Authorization:
//! Bearer {auth_key}` works too). The offer is answered on a blocking
//! thread, outside the lock the media loop uses ([`Peer::accept`] is the
//! slow part); then the peer goes into the host. The first WebRTC viewer
//! of a stream starts its branch, whose packets the loop hands to the host
//! for its viewers; the host's `StreamIdle` stops the branch, or, while it
//! transcodes, pauses it for `[webrtc] transcode_linger_s` (decoding only,
//! so the next viewer gets an IDR of the live edge at once).
//!
//! Policy lives in the host: a new viewer or a PLI gets a keyframe made by
//! the transcoder (at most one per [`KEYFRAME_INTERVAL`]) or the packets of
//! the cached GOP in passthrough; addresses bind only by authenticated STUN;
//! a session must connect within 10 s; sessions still connecting are capped
//! per remote IP. When the publisher leaves, viewers keep their session
//! through the grace period; when the stream ends, their sessions close.
//!
//! The loop is supervised (`Server::run`): if it panics it starts again with
//! an empty host, and a panic inside one session ends only that session.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use bytes::BytesMut;
use rts_audio::transcode::FrameDuration;
use rts_auth::urls::Protocol as UrlProtocol;
use rts_h264::Mode;
use rts_rtp::timeline::Continuity;
use rts_webrtc::framing::{self, Deframer};
use rts_webrtc::host::{Host, HostConfig, HostEvent, HostStats, Keyframes, SessionKind};
use rts_webrtc::udp::BatchSender;
use rts_webrtc::{Certificate, MediaKind, Peer, Role, Transport};
use rts_whip::{
    Backend, CreateError, Denied, IceParams, Kind, Resource, ResourceId, SdpFrag, Target,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, watch};

use crate::branch::{self, Branch, BranchOut, Converter, Delivery, Media};
use crate::config::Config;
use crate::hub::{Hub, Protocol, PublishError, Publisher, StreamKey};
use crate::ingest::{Forward, Ingest};
use crate::metrics::ErrorKind;
use crate::{Shared, access};

/// Keyframe requests to the transcoder are at most this frequent.
pub(crate) const KEYFRAME_INTERVAL: Duration = Duration::from_millis(300);
/// Datagrams taken from the socket per loop turn, beyond the first.
const RECV_BATCH: usize = 256;
/// A peer that proves nothing for this long is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest offer body read.
const MAX_OFFER: usize = 64 * 1024;
/// ICE-TCP: largest RFC 4571 frame taken (a datagram of ours is at most
/// about 1,300 bytes).
const MAX_TCP_FRAME: usize = 2048;
/// ICE-TCP connections at once, and from one IP.
const MAX_TCP_CONNECTIONS: usize = 1024;
const MAX_TCP_PER_IP: usize = 64;
/// An ICE-TCP connection that sends nothing for this long is closed (the
/// first frame has this long too).
const TCP_IDLE: Duration = Duration::from_secs(15);
/// Frames queued for one ICE-TCP connection's writer.
const TCP_QUEUE: usize = 512;

/// What a stream's WebRTC viewers are fed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Feed {
    /// A conversion branch of the hub's stream: converted for browsers, or
    /// as published (`?passthrough=1`: a player that decodes B-frames).
    Branch(Delivery),
    /// A WHIP publisher's RTP, forwarded as it arrives (SFU style).
    Forwarded,
}

/// A stream's viewers (and its WHIP publisher, for [`Feed::Forwarded`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FanKey {
    stream: StreamKey,
    feed: Feed,
}

impl FanKey {
    fn new(stream: &StreamKey, feed: Feed) -> FanKey {
        FanKey {
            stream: stream.clone(),
            feed,
        }
    }
}

/// The forwarding state of a stream published over WHIP: the timeline's
/// origin (kept across a republish, so timestamps go on) and the
/// sequence numbers viewers see, continued across a new publisher's.
struct Forwarder {
    origin: Instant,
    video: Continuity,
    audio: Continuity,
    /// The WHIP session publishing it now.
    publisher: Option<ResourceId>,
    /// The current GOP's video packets (rewritten), for the first viewer:
    /// the host keeps a GOP only for streams that have viewers. `None`
    /// while the GOP is longer than [`FORWARD_GOP_PACKETS`].
    gop: Option<Vec<rts_rtp::Packet>>,
}

/// Video packets of one GOP a forwarded stream keeps at most (as the host
/// does for its viewers).
const FORWARD_GOP_PACKETS: usize = 8192;

impl Forwarder {
    fn new(origin: Instant) -> Result<Forwarder, CreateError> {
        let seq = |r: u32| r as u16;
        Ok(Forwarder {
            origin,
            // Timestamps come from the ingest's shared timeline; only the
            // sequence numbers are taken from here.
            video: Continuity::new(seq(random_ssrc()?), 0, 3000, u32::MAX),
            audio: Continuity::new(seq(random_ssrc()?), 0, 960, u32::MAX),
            publisher: None,
            gop: None,
        })
    }
}

struct State {
    host: Host<ResourceId, FanKey>,
    branches: HashMap<FanKey, Branch>,
    /// WHIP publishers: their media on its way into the hub.
    ingests: HashMap<ResourceId, Publishing>,
    /// Streams published over WHIP, forwarded to their WHEP viewers.
    forwards: HashMap<StreamKey, Forwarder>,
}

/// One WHIP publisher: its RTP as tags ([`Ingest`]), pushed into the hub.
struct Publishing {
    ingest: Ingest,
    publisher: Publisher,
}

/// The WebRTC server: the UDP socket, the host and the branches.
pub(crate) struct Rtc {
    state: Mutex<State>,
    wake: Arc<Notify>,
    socket: UdpSocket,
    addr: SocketAddr,
    certificate: Certificate,
    whip: rts_whip::Server,
    host_config: HostConfig,
    /// ICE-TCP passive listener (`[webrtc] ice_tcp`).
    tcp: Option<tokio::net::TcpListener>,
    tcp_addr: Option<SocketAddr>,
    /// Writers of the open ICE-TCP connections, by remote address.
    tcp_conns: Mutex<HashMap<SocketAddr, tokio::sync::mpsc::Sender<BytesMut>>>,
    /// The loop is up (false once it stopped for shutdown).
    running: AtomicBool,
    /// Times the supervised loop started again after a panic.
    loop_restarts: AtomicU64,
    /// How branches convert (`[webrtc]`).
    settings: BranchSettings,
}

/// How branches convert, from `[webrtc]`.
#[derive(Debug, Clone, Copy)]
struct BranchSettings {
    bframes: Mode,
    /// The transcoder's bitrate in bit/s (None: from the input).
    bitrate: Option<u32>,
    opus_frame: FrameDuration,
    /// How long a transcoding branch without viewers keeps decoding.
    linger: Duration,
    /// Every published stream with B-frames gets a warm branch.
    warm_on_publish: bool,
}

impl BranchSettings {
    fn new(w: &crate::config::WebRtc) -> BranchSettings {
        BranchSettings {
            bframes: Mode::from(w.bframes),
            bitrate: (w.transcode_kbps > 0).then(|| w.transcode_kbps.saturating_mul(1000)),
            opus_frame: if w.opus_frame_ms == 20 {
                FrameDuration::Ms20
            } else {
                FrameDuration::Ms10
            },
            linger: Duration::from_secs(w.transcode_linger_s),
            warm_on_publish: w.transcode_warm_on_publish,
        }
    }
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

/// Tries for a free port number for both UDP and ICE-TCP when the configured
/// port is 0 (the kernel picks the UDP port; the same TCP port may be taken).
const BIND_PAIR_TRIES: usize = 16;

type Bound = (
    UdpSocket,
    SocketAddr,
    Option<tokio::net::TcpListener>,
    Option<SocketAddr>,
);

/// Kernel buffer asked for the UDP socket, each way. Linux's default
/// (208 KiB) holds less than the GOP a late viewer of a 720p stream gets
/// at once, or a 1080p publisher's keyframe beside other streams' traffic;
/// what overflows is lost. Linux caps it at `net.core.rmem_max` /
/// `wmem_max` (docs/hardening.md).
const UDP_BUFFER_BYTES: usize = 4 << 20;

/// Asks for [`UDP_BUFFER_BYTES`] each way and says what the kernel gave.
fn size_udp_buffers(socket: &UdpSocket) {
    let s = socket2::SockRef::from(socket);
    // Errors are the kernel's cap, read back below.
    let _ = s.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = s.set_send_buffer_size(UDP_BUFFER_BYTES);
    // Linux reports twice what was granted (its bookkeeping share).
    let granted = |n: std::io::Result<usize>| n.map_or(0, |n| n / 2);
    let (rx, tx) = (granted(s.recv_buffer_size()), granted(s.send_buffer_size()));
    if rx < UDP_BUFFER_BYTES || tx < UDP_BUFFER_BYTES {
        tracing::warn!(
            "WebRTC UDP buffers are {} KiB in, {} KiB out (asked {} KiB): bursts beyond them are lost; raise the kernel's cap, e.g. sysctl -w net.core.rmem_max={} net.core.wmem_max={}",
            rx >> 10,
            tx >> 10,
            UDP_BUFFER_BYTES >> 10,
            UDP_BUFFER_BYTES,
            UDP_BUFFER_BYTES
        );
    } else {
        tracing::debug!("WebRTC UDP buffers: {} KiB each way", rx >> 10);
    }
}

/// Binds the UDP socket and, with `ice_tcp`, a TCP listener on the same IP
/// and port number.
async fn bind_pair(at: SocketAddr, ice_tcp: bool) -> Result<Bound, crate::Error> {
    let mut tries = 0usize;
    loop {
        tries = tries.saturating_add(1);
        let socket = UdpSocket::bind(at)
            .await
            .map_err(|source| crate::Error::Bind {
                what: "WebRTC",
                addr: at,
                source,
            })?;
        let addr = socket.local_addr()?;
        size_udp_buffers(&socket);
        if !ice_tcp {
            return Ok((socket, addr, None, None));
        }
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                let a = l.local_addr()?;
                return Ok((socket, addr, Some(l), Some(a)));
            }
            // An ephemeral UDP port whose TCP twin is busy: pick another.
            Err(e)
                if at.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && tries < BIND_PAIR_TRIES => {}
            Err(source) => {
                return Err(crate::Error::Bind {
                    what: "WebRTC ICE-TCP",
                    addr,
                    source,
                });
            }
        }
    }
}

impl Rtc {
    /// Binds the UDP socket and makes the DTLS certificate.
    pub(crate) async fn bind(config: &Config) -> Result<Rtc, crate::Error> {
        let (socket, addr, tcp, tcp_addr) =
            bind_pair(config.listen.rtc, config.webrtc.ice_tcp).await?;
        let certificate = Certificate::generate()
            .map_err(|e| std::io::Error::other(format!("DTLS certificate: {e}")))?;
        let host_config = HostConfig {
            max_sessions: config.webrtc.max_sessions,
            keyframe_interval: KEYFRAME_INTERVAL,
            ..HostConfig::default()
        };
        Ok(Rtc {
            state: Mutex::new(State {
                host: Host::new(host_config.clone()),
                branches: HashMap::new(),
                ingests: HashMap::new(),
                forwards: HashMap::new(),
            }),
            wake: Arc::new(Notify::new()),
            socket,
            addr,
            certificate,
            whip: rts_whip::Server::new(rts_whip::Config {
                ice_servers: config
                    .webrtc
                    .ice_servers
                    .iter()
                    .map(|s| rts_whip::IceServer {
                        url: s.url.clone(),
                        username: s.username.clone(),
                        credential: s.credential.clone(),
                    })
                    .collect(),
                ..rts_whip::Config::default()
            }),
            host_config,
            tcp,
            tcp_addr,
            tcp_conns: Mutex::new(HashMap::new()),
            running: AtomicBool::new(true),
            loop_restarts: AtomicU64::new(0),
            settings: BranchSettings::new(&config.webrtc),
        })
    }

    /// The UDP address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Host counters, session count and supervised loop restarts.
    pub(crate) fn stats(&self) -> (HostStats, usize, u64) {
        let s = lock(&self.state);
        (
            s.host.stats(),
            s.host.len(),
            self.loop_restarts.load(Ordering::Relaxed),
        )
    }

    /// The ICE-TCP listen address, when on.
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Accepts ICE-TCP connections until `stop`: bounded in count, per IP
    /// and in idle time; each carries RFC 4571 frames to and from the host.
    pub(crate) async fn accept_tcp(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
        let Some(listener) = &shared.rtc.tcp else {
            return;
        };
        let cap = crate::accept::ConnLimit::new("ice-tcp", MAX_TCP_CONNECTIONS, MAX_TCP_PER_IP);
        loop {
            let (stream, peer) = tokio::select! {
                a = crate::accept::next(listener, "webrtc ice-tcp") => a,
                _ = stop.changed() => return,
            };
            let permit = match cap.admit(peer.ip()) {
                Ok(p) => p,
                Err(full) => {
                    tracing::info!(%peer, "webrtc ice-tcp connection refused: {full}");
                    continue;
                }
            };
            let (tx, rx) = tokio::sync::mpsc::channel(TCP_QUEUE);
            shared
                .rtc
                .tcp_conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(peer, tx);
            let conn = tcp_connection(shared.clone(), stream, peer, rx, stop.clone());
            tokio::spawn(async move {
                conn.await;
                drop(permit);
            });
        }
    }

    /// WHIP/WHEP requests: `/{app}/{stream}/whep[/{id}]`, from `remote`.
    pub(crate) async fn http(
        shared: Arc<Shared>,
        remote: SocketAddr,
        req: axum::extract::Request,
    ) -> Response {
        let (parts, body) = req.into_parts();
        let Ok(body) = axum::body::to_bytes(body, MAX_OFFER).await else {
            return plain(413, "request body too large (at most 64 KiB) or unreadable");
        };
        let mut random = [0u8; 16];
        if getrandom::fill(&mut random).is_err() {
            return plain(503, "no randomness for a session id; try again");
        }
        if !shared.rtc.running.load(Ordering::Relaxed) {
            return plain(503, "WebRTC is not running (the server is shutting down)");
        }
        // Answering an offer builds a peer connection: CPU work, off the
        // async runtime and outside the media loop's lock.
        let answered = tokio::task::spawn_blocking(move || {
            let rtc = &shared.rtc;
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned);
            let mut backend = Whep {
                rtc,
                shared: &shared,
                host,
                remote_ip: remote.ip(),
                ingest: None,
                delivery: Delivery::Converted,
            };
            let response =
                rtc.whip
                    .handle(http::Request::from_parts(parts, body), &mut backend, random);
            rtc.wake.notify_one();
            response
        })
        .await;
        match answered {
            Ok(response) => response.map(Body::from),
            Err(e) => {
                tracing::error!("webrtc: answering an offer failed: {e}");
                plain(500, "internal error while answering the offer; try again")
            }
        }
    }

    /// Runs the UDP side until `stop`: receive and route datagrams, hand the
    /// branches' packets to the host, drive timers, send.
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
        let mut warm_check = Instant::now();
        loop {
            let now = Instant::now();
            if now >= warm_check {
                self.keep_warm(&hub, now);
                warm_check = now.checked_add(Duration::from_secs(1)).unwrap_or(now);
            }
            let next = self.turn(&hub, Instant::now(), &mut out);
            self.send_all(&mut batch, &mut out).await;
            let sleep =
                tokio::time::sleep_until(tokio::time::Instant::from_std(next.max(Instant::now())));
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let mut s = lock(&self.state);
                    let now = Instant::now();
                    if let Some(d) = buf.get(..n) {
                        s.host.handle_datagram(now, from, d);
                    }
                    // What else is waiting, before the next turn (which
                    // visits every session): one turn per batch.
                    for _ in 0..RECV_BATCH {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, from)) => {
                                if let Some(d) = buf.get(..n) {
                                    s.host.handle_datagram(now, from, d);
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => break,
            }
        }
        self.running.store(false, Ordering::Relaxed);
        {
            let mut s = lock(&self.state);
            s.host.close_all(Instant::now());
            self.route_transmits(&mut s.host, &mut out);
            s.branches.clear();
            s.ingests.clear();
            s.forwards.clear();
        }
        self.send_all(&mut batch, &mut out).await;
    }

    /// A branch for `fan`, started outside the host's lock.
    fn start_branch(&self, hub: &Hub, fan: &FanKey) -> Result<Branch, CreateError> {
        let key = &fan.stream;
        let viewer = hub
            .play(key, Protocol::Conversion, Instant::now())
            .map_err(|_| CreateError::NotFound(format!("{}/{}", key.app, key.stream)))?;
        let s = self.settings;
        let mut mode = s.bframes;
        if mode == Mode::Auto
            && hub
                .stream(key, Instant::now())
                .is_some_and(|info| info.b_frames)
        {
            // B-frames seen already: transcode from the cached GOP on, instead
            // of passing it through and decoding it again at the first B.
            mode = Mode::Transcode;
        }
        let Feed::Branch(delivery) = fan.feed else {
            return Err(CreateError::Unavailable(
                "a forwarded stream has no conversion branch".into(),
            ));
        };
        let converter = Converter::new(mode, s.bitrate, delivery)
            .map_err(|e| CreateError::Unavailable(format!("cannot start the conversion: {e}")))?
            .with_opus_frame(s.opus_frame);
        branch::spawn(
            key.clone(),
            viewer,
            hub.clone(),
            converter,
            self.wake.clone(),
        )
        .map_err(|e| CreateError::Unavailable(format!("cannot start the conversion: {e}")))
    }

    /// With `transcode_warm_on_publish`: a paused branch for every published
    /// stream with B-frames that has none, so that even its first WebRTC
    /// viewer starts from an IDR of the live edge.
    fn keep_warm(&self, hub: &Hub, now: Instant) {
        if !self.settings.warm_on_publish {
            return;
        }
        for info in hub.streams(now) {
            if !info.publishing || !info.b_frames || info.video_codec.as_deref() != Some("h264") {
                continue;
            }
            let fan = FanKey::new(
                &StreamKey::new(&info.domain, &info.app, &info.stream),
                Feed::Branch(Delivery::Converted),
            );
            if lock(&self.state).branches.contains_key(&fan) {
                continue;
            }
            let mut branch = match self.start_branch(hub, &fan) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(stream = %fan.stream, "no warm branch: {e}");
                    continue;
                }
            };
            branch.pause(now);
            let mut guard = lock(&self.state);
            let State { host, branches, .. } = &mut *guard;
            if !branches.contains_key(&fan) {
                tracing::info!(stream = %fan.stream, "conversion branch warm from the publish");
                branches.insert(fan.clone(), branch);
                update_counts(hub, host, branches, &fan.stream);
            }
        }
    }

    /// After the loop panicked: every session and branch is dropped (their
    /// state may be half-updated) and the loop starts over.
    pub(crate) fn restart_after_panic(&self, hub: &Hub) {
        self.loop_restarts.fetch_add(1, Ordering::Relaxed);
        let mut s = lock(&self.state);
        let streams: Vec<StreamKey> = s.branches.keys().map(|k| k.stream.clone()).collect();
        s.host = Host::new(self.host_config.clone());
        s.branches.clear();
        // Dropping a publisher leaves its stream (viewers keep the grace
        // period; the encoder reconnects).
        s.ingests.clear();
        let forwarded: Vec<StreamKey> = s.forwards.drain().map(|(k, _)| k).collect();
        drop(s);
        for stream in &forwarded {
            hub.update_conversion(stream, |_, v| *v = 0);
        }
        for stream in streams {
            hub.update_conversion(&stream, |c, v| {
                *v = 0;
                c.running = false;
            });
        }
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

    /// The host's datagrams: UDP ones into `out`, ICE-TCP ones to their
    /// connection's writer (dropped, like a lost datagram, when it is full
    /// or gone).
    fn route_transmits(
        &self,
        host: &mut Host<ResourceId, FanKey>,
        out: &mut Vec<(SocketAddr, BytesMut)>,
    ) {
        let mut conns = None;
        while let Some(t) = host.poll_transmit() {
            if t.transport == Transport::Udp {
                out.push((t.destination, t.contents));
                continue;
            }
            let conns = conns
                .get_or_insert_with(|| self.tcp_conns.lock().unwrap_or_else(|e| e.into_inner()));
            if let Some(w) = conns.get(&t.destination) {
                let _ = w.try_send(t.contents);
            }
        }
    }

    /// One turn of the loop; returns when the next timer is due.
    fn turn(&self, hub: &Hub, now: Instant, out: &mut Vec<(SocketAddr, BytesMut)>) -> Instant {
        let mut guard = lock(&self.state);
        let State {
            host,
            branches,
            ingests,
            forwards,
        } = &mut *guard;

        // Media from the branches.
        let mut ended = Vec::new();
        for (key, branch) in branches.iter_mut() {
            let keyframes = if branch.control.transcoding() {
                Keyframes::OnRequest
            } else {
                Keyframes::FromSource
            };
            host.set_keyframes(key, keyframes);
            loop {
                match branch.rx.try_recv() {
                    Ok(BranchOut::Media(Media::Video { packets, keyframe })) => {
                        host.send_video(now, key, &packets, keyframe);
                    }
                    Ok(BranchOut::Media(Media::Audio(packet))) => {
                        host.send_audio(now, key, &packet);
                    }
                    Ok(BranchOut::Ended(why)) => {
                        ended.push((key.clone(), why));
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        ended.push((key.clone(), "the conversion stopped".to_owned()));
                        break;
                    }
                }
            }
        }
        for (key, why) in ended {
            tracing::info!(stream = %key.stream, "webrtc viewers end: {why}");
            branches.remove(&key);
            host.end_stream(&key, "the stream ended");
        }

        if host.poll_timeout().is_some_and(|t| t <= now) {
            host.handle_timeout(now);
        }
        let mut touched = Vec::new();
        while let Some(ev) = host.poll_event() {
            match ev {
                HostEvent::Connected { id, kind, after } => {
                    tracing::info!(
                        stream = %kind.stream().stream,
                        "webrtc {} {id} connected {} ms after its offer",
                        role(&kind),
                        after.as_millis()
                    );
                }
                HostEvent::Closed { id, kind, reason } => {
                    tracing::info!(stream = %kind.stream().stream, "webrtc {} {id} left: {reason}", role(&kind));
                    if let Some(p) = ingests.remove(&id) {
                        if let Some(f) = forwards.get_mut(p.publisher.key())
                            && f.publisher == Some(id)
                        {
                            f.publisher = None;
                        }
                        let st = p.ingest.stats();
                        tracing::info!(
                            stream = %kind.stream().stream,
                            "whip publisher {id}: {} video and {} audio frames in, {} access units dropped, {} packets lost",
                            st.video_frames, st.audio_frames, st.video_dropped, st.lost
                        );
                        p.publisher.leave(now);
                    }
                    touched.push(kind.stream().stream.clone());
                }
                HostEvent::Rtp {
                    id,
                    media,
                    codec,
                    packet,
                    ..
                } => {
                    if let Some(p) = ingests.get_mut(&id)
                        && let Some(f) = p.ingest.handle_rtp(now, media, codec, packet)
                    {
                        forward(host, forwards, p.publisher.key(), f, now);
                    }
                }
                HostEvent::KeyframeNeeded { stream } => {
                    if let Some(b) = branches.get(&stream) {
                        b.control.request_keyframe();
                    } else if let Some(id) = forwards.get(&stream.stream).and_then(|f| f.publisher)
                    {
                        // A forwarded stream's viewer joined, lost a
                        // picture or fell behind: the publisher makes one
                        // (coalesced by the host's keyframe interval).
                        host.request_keyframe(now, id);
                    }
                }
                HostEvent::StreamIdle { stream } => {
                    // The last viewer of this branch left: it stops (dropped),
                    // or a transcoding one lingers, decoding only.
                    match branches.get_mut(&stream) {
                        Some(b)
                            if (self.settings.warm_on_publish
                                || !self.settings.linger.is_zero())
                                && b.control.transcoding() =>
                        {
                            b.pause(now);
                        }
                        _ => {
                            branches.remove(&stream);
                        }
                    }
                    touched.push(stream.stream);
                }
                _ => {}
            }
        }
        let BranchSettings {
            linger,
            warm_on_publish,
            ..
        } = self.settings;
        branches.retain(|key, b| {
            // Warm from the publish: until the stream ends (the branch then
            // says so and is removed above).
            let keep = warm_on_publish
                || b.idle_since()
                    .is_none_or(|t| now.saturating_duration_since(t) < linger);
            if !keep {
                tracing::info!(stream = %key.stream, "conversion branch: no viewer for {} s", linger.as_secs());
                touched.push(key.stream.clone());
            }
            keep
        });
        for stream in touched {
            update_counts(hub, host, branches, &stream);
        }
        let ingest_next = feed_hub(host, ingests, now);
        end_forwards(hub, host, forwards, now);
        self.route_transmits(host, out);
        let next = now.checked_add(Duration::from_millis(50)).unwrap_or(now);
        [host.poll_timeout(), ingest_next]
            .into_iter()
            .flatten()
            .fold(next, Instant::min)
    }
}

/// A WHIP publisher's packet to the viewers of its stream: their own
/// sequence numbers (continued across a republish); each viewer's peer
/// sets its SSRC and payload type, keeps a history for NACKs and sends
/// sender reports on the shared timeline.
fn forward(
    host: &mut Host<ResourceId, FanKey>,
    forwards: &mut HashMap<StreamKey, Forwarder>,
    stream: &StreamKey,
    f: Forward,
    now: Instant,
) {
    let Some(fwd) = forwards.get_mut(stream) else {
        return;
    };
    let mut packet = f.packet;
    let seq = match f.media {
        MediaKind::Video => &mut fwd.video,
        MediaKind::Audio => &mut fwd.audio,
    };
    packet.sequence_number = seq
        .rewrite(packet.ssrc, packet.sequence_number, packet.timestamp)
        .0;
    if f.media == MediaKind::Video {
        if f.keyframe_start {
            fwd.gop = Some(Vec::new());
        }
        if let Some(gop) = &mut fwd.gop {
            if gop.len() < FORWARD_GOP_PACKETS {
                gop.push(packet.clone());
            } else {
                fwd.gop = None;
            }
        }
    }
    let fan = FanKey::new(stream, Feed::Forwarded);
    if host.viewers(&fan) == 0 {
        return;
    }
    match f.media {
        MediaKind::Video => host.send_video(now, &fan, &[packet], f.keyframe_start),
        MediaKind::Audio => host.send_audio(now, &fan, &packet),
    }
}

/// Forwarded streams whose publisher left and whose grace period is over
/// (the hub ended them): their viewers' sessions end.
fn end_forwards(
    hub: &Hub,
    host: &mut Host<ResourceId, FanKey>,
    forwards: &mut HashMap<StreamKey, Forwarder>,
    now: Instant,
) {
    forwards.retain(|stream, f| {
        if f.publisher.is_some() || hub.stream(stream, now).is_some() {
            return true;
        }
        host.end_stream(&FanKey::new(stream, Feed::Forwarded), "the stream ended");
        hub.update_conversion(stream, |c, v| {
            *v = 0;
            c.forwarded = false;
        });
        false
    });
}

/// "viewer" or "publisher", for logs.
fn role(kind: &SessionKind<FanKey>) -> &'static str {
    match kind {
        SessionKind::Play(_) => "viewer",
        SessionKind::Publish(_) => "publisher",
    }
}

/// WHIP publishers' timers, tags into the hub and keyframe requests;
/// returns the earliest timer. A publisher whose stream was taken over
/// (silent past `publisher_silence_ms`, then replaced) is closed.
fn feed_hub(
    host: &mut Host<ResourceId, FanKey>,
    ingests: &mut HashMap<ResourceId, Publishing>,
    now: Instant,
) -> Option<Instant> {
    let mut next: Option<Instant> = None;
    let mut lost = Vec::new();
    let mut keyframes = Vec::new();
    for (id, p) in ingests.iter_mut() {
        if p.ingest.poll_timeout().is_some_and(|t| t <= now) {
            p.ingest.handle_timeout(now);
        }
        while let Some(tag) = p.ingest.poll_tag() {
            if !p.publisher.push(now, tag.kind, tag.timestamp, tag.payload) {
                lost.push(*id);
                break;
            }
        }
        if host.is_connected(id) && p.ingest.take_keyframe_request(now) {
            keyframes.push(*id);
        }
        if let Some(t) = p.ingest.poll_timeout() {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    }
    for id in keyframes {
        host.request_keyframe(now, id);
    }
    for id in lost {
        tracing::info!("whip publisher {id}: another publisher took the stream over");
        host.close(now, id);
    }
    next
}

/// Shows the stream's WebRTC viewers (every feed) in the hub.
fn update_counts(
    hub: &Hub,
    host: &Host<ResourceId, FanKey>,
    branches: &HashMap<FanKey, Branch>,
    stream: &StreamKey,
) {
    let key = |feed| FanKey::new(stream, feed);
    let viewers = [
        Feed::Branch(Delivery::Converted),
        Feed::Branch(Delivery::AsPublished),
        Feed::Forwarded,
    ]
    .into_iter()
    .map(|feed| host.viewers(&key(feed)))
    .fold(0usize, usize::saturating_add);
    let branch = branches.get(&key(Feed::Branch(Delivery::Converted)));
    let running = branch.is_some_and(|b| b.idle_since().is_none());
    let warm = branch.is_some_and(|b| b.idle_since().is_some());
    let forwarded = host.viewers(&key(Feed::Forwarded)) > 0;
    hub.update_conversion(stream, |c, v| {
        *v = viewers as u64;
        c.running = running;
        c.warm = warm;
        c.forwarded = forwarded;
    });
}

/// One ICE-TCP connection (RFC 6544, passive side): RFC 4571 frames (a
/// 16-bit length, then a datagram) in both directions. Its frames go to
/// the host as datagrams from `peer`; the host's replies come back through
/// `rx`. Closed when it is idle for [`TCP_IDLE`] (also before its first
/// frame), on a frame over [`MAX_TCP_FRAME`], or at shutdown.
async fn tcp_connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    mut rx: tokio::sync::mpsc::Receiver<BytesMut>,
    mut stop: watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rtc = &shared.rtc;
    let (mut rd, mut wr) = stream.into_split();
    let mut frames = Deframer::new(MAX_TCP_FRAME);
    let why = loop {
        tokio::select! {
            r = tokio::time::timeout(TCP_IDLE, rd.read_buf(frames.buffer())) => match r {
                Err(_) => break "idle".to_owned(),
                Ok(Ok(0)) => break "closed by the peer".to_owned(),
                Ok(Err(e)) => break format!("read: {e}"),
                Ok(Ok(_)) => {
                    let mut handled = false;
                    let end = loop {
                        match frames.next_frame() {
                            Ok(Some(datagram)) => {
                                lock(&rtc.state).host.handle_datagram_on(
                                    Instant::now(),
                                    peer,
                                    Transport::Tcp,
                                    &datagram,
                                );
                                handled = true;
                            }
                            Ok(None) => break None,
                            Err(e) => break Some(e.to_string()),
                        }
                    };
                    if handled {
                        rtc.wake.notify_one();
                    }
                    if let Some(e) = end {
                        break e;
                    }
                }
            },
            Some(datagram) = rx.recv() => {
                let Some(out) = framing::frame(&datagram) else { continue };
                if let Err(e) = wr.write_all(&out).await {
                    break format!("write: {e}");
                }
            }
            _ = stop.changed() => break "shutdown".to_owned(),
        }
    };
    tracing::debug!(%peer, "webrtc ice-tcp connection closed: {why}");
    rtc.tcp_conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&peer);
    let _ = wr.shutdown().await;
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
    rtc: &'a Rtc,
    shared: &'a Shared,
    host: Option<String>,
    remote_ip: IpAddr,
    /// The ingest domain `authorize` resolved.
    ingest: Option<String>,
    /// `?passthrough=1`: the video as published for this viewer.
    delivery: Delivery,
}

impl Whep<'_> {
    /// ICE host candidates: configured, else the bound IP, else the IP the
    /// client used to reach us, plus loopback.
    fn candidates(&self) -> Vec<SocketAddr> {
        let local = self.rtc.addr;
        let port = local.port();
        let configured = &self.shared.config.webrtc.candidates;
        if !configured.is_empty() {
            return configured
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect();
        }
        if !local.ip().is_unspecified() {
            return vec![local];
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

    fn target(kind: &SessionKind<FanKey>) -> Target {
        let key = kind.stream();
        Target {
            kind: match kind {
                SessionKind::Play(_) => Kind::Whep,
                SessionKind::Publish(_) => Kind::Whip,
            },
            app: key.stream.app.clone(),
            stream: key.stream.stream.clone(),
        }
    }

    /// The peer settings of a new session.
    fn peer_config(&self) -> Result<rts_webrtc::Config, CreateError> {
        let candidates = self.candidates();
        let w = &self.shared.config.webrtc;
        // ICE-TCP: the same IPs, the TCP listener's port.
        let tcp_candidates: Vec<SocketAddr> = match self.rtc.tcp_addr {
            Some(tcp) => candidates
                .iter()
                .map(|c| SocketAddr::new(c.ip(), tcp.port()))
                .collect(),
            None => Vec::new(),
        };
        Ok(rts_webrtc::Config {
            local_addr: candidates.first().copied().unwrap_or(self.rtc.addr),
            candidates: if w.ice_udp { candidates } else { Vec::new() },
            tcp_candidates,
            certificate: self.rtc.certificate.clone(),
            // Empty: the stack generates random credentials, and new ones
            // at each ICE restart (it cannot be handed new ones later).
            ice_ufrag: String::new(),
            ice_pwd: String::new(),
            video_ssrc: random_ssrc()?,
            audio_ssrc: random_ssrc()?,
            idle_timeout: IDLE_TIMEOUT,
            stats_interval: Duration::from_secs(1),
        })
    }

    /// WHIP: a publisher of `target` into the hub, answering `offer`.
    fn create_publisher(
        &mut self,
        target: &Target,
        offer: &str,
        id: ResourceId,
    ) -> Result<String, CreateError> {
        let ingest = self
            .ingest
            .take()
            .ok_or_else(|| CreateError::Unavailable("request was not authorized".into()))?;
        let stream = StreamKey::new(&ingest, &target.app, &target.stream);
        let config = self.peer_config()?;
        let now = Instant::now();
        let (peer, answer) = Peer::accept(now, offer, Role::Publisher, &config)
            .map_err(|e| CreateError::BadSdp(e.to_string()))?;
        let hub = &self.shared.hub;
        let publisher = hub.publish(stream.clone(), now).map_err(|e| {
            tracing::info!(stream = %stream, "whip refused: {e}");
            match e {
                PublishError::AlreadyPublishing => {
                    hub.metrics().error(ErrorKind::AlreadyPublishing);
                    CreateError::AlreadyPublishing(format!(
                        "{}/{} (one publisher per stream; stop the other one, or wait for it to time out)",
                        target.app, target.stream
                    ))
                }
                e => {
                    hub.metrics().error(ErrorKind::Unavailable);
                    CreateError::Unavailable(e.to_string())
                }
            }
        })?;
        let key = FanKey::new(&stream, Feed::Forwarded);
        let fresh = Forwarder::new(now)?;
        let mut guard = lock(&self.rtc.state);
        let State {
            host,
            ingests,
            forwards,
            ..
        } = &mut *guard;
        if let Err(refused) = host.insert(now, id, SessionKind::Publish(key), peer, self.remote_ip)
        {
            publisher.leave(now);
            tracing::info!(stream = %stream, "whip refused: {refused}");
            return Err(CreateError::Unavailable(refused.to_string()));
        }
        let fwd = forwards.entry(stream.clone()).or_insert(fresh);
        fwd.publisher = Some(id);
        ingests.insert(
            id,
            Publishing {
                ingest: Ingest::new(fwd.origin),
                publisher,
            },
        );
        tracing::info!(stream = %stream, "whip publisher {id} offered");
        Ok(answer)
    }
}

impl Backend for Whep<'_> {
    fn authorize(&mut self, request: &http::request::Parts, target: &Target) -> Result<(), Denied> {
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
        let (config, host, now) = (
            &self.shared.config,
            self.host.as_deref(),
            access::unix_now(),
        );
        let (app, stream) = (&target.app, &target.stream);
        let checked = if target.kind == Kind::Whip {
            access::publish(
                config,
                host,
                access::Ingest::Whip,
                app,
                stream,
                &queries,
                now,
            )
        } else {
            access::play(config, host, UrlProtocol::Artc, app, stream, &queries, now).map(|play| {
                let passthrough = crate::config::query_param(query, "passthrough")
                    .is_some_and(|v| v == "1" || v == "true");
                self.delivery = if passthrough {
                    Delivery::AsPublished
                } else {
                    Delivery::Converted
                };
                play.ingest
            })
        };
        match checked {
            Ok(ingest) => {
                self.ingest = Some(ingest);
                Ok(())
            }
            Err(access::Refusal { kind, reason: why }) => {
                self.shared.hub.metrics().error(kind);
                let what = if target.kind == Kind::Whip {
                    "whip"
                } else {
                    "whep"
                };
                tracing::info!(app, stream, "{what} refused: {why}");
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
            return self.create_publisher(target, offer, id);
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
        let config = self.peer_config()?;
        let (peer, answer) = Peer::accept(Instant::now(), offer, Role::Viewer, &config)
            .map_err(|e| CreateError::BadSdp(e.to_string()))?;
        // A stream published over WHIP here is forwarded as it arrives;
        // others are fed by a conversion branch of the hub's stream.
        let (forwarded, has_branch) = {
            let s = lock(&self.rtc.state);
            let forwarded = s
                .forwards
                .get(&stream)
                .is_some_and(|f| f.publisher.is_some());
            let branch = FanKey::new(&stream, Feed::Branch(self.delivery));
            (forwarded, s.branches.contains_key(&branch))
        };
        let key = FanKey::new(
            &stream,
            if forwarded {
                Feed::Forwarded
            } else {
                Feed::Branch(self.delivery)
            },
        );
        let new_branch = if forwarded || has_branch {
            None
        } else {
            Some(self.rtc.start_branch(hub, &key)?)
        };
        let converted = key.feed == Feed::Branch(Delivery::Converted);
        let now = Instant::now();
        let mut guard = lock(&self.rtc.state);
        let State {
            host,
            branches,
            forwards,
            ..
        } = &mut *guard;
        if let Some(b) = new_branch
            && !branches.contains_key(&key)
        {
            branches.insert(key.clone(), b);
            if converted {
                hub.update_conversion(&stream, |c, _| c.starts = c.starts.saturating_add(1));
            }
        }
        if let Err(refused) = host.insert(
            Instant::now(),
            id,
            SessionKind::Play(key.clone()),
            peer,
            self.remote_ip,
        ) {
            if host.viewers(&key) == 0 {
                branches.remove(&key);
            }
            tracing::info!(stream = %stream, "whep refused: {refused}");
            return Err(CreateError::Unavailable(refused.to_string()));
        }
        if forwarded {
            // A new viewer starts from the cached GOP, and the publisher is
            // asked for a fresh keyframe (PLI), as for viewers' PLIs.
            host.set_keyframes(&key, Keyframes::Forwarded);
            if host.viewers(&key) == 1
                && let Some(gop) = forwards.get(&stream).and_then(|f| f.gop.as_ref())
            {
                // The stream's first viewer: the host has no GOP yet.
                for (i, p) in gop.iter().enumerate() {
                    host.send_video(now, &key, std::slice::from_ref(p), i == 0);
                }
            }
        }
        if let Some(b) = branches.get_mut(&key)
            && b.resume()
        {
            tracing::info!(stream = %stream, "conversion branch resumed");
            if converted {
                hub.update_conversion(&stream, |c, _| {
                    c.starts = c.starts.saturating_add(1);
                    c.resumes = c.resumes.saturating_add(1);
                });
            }
        }
        update_counts(hub, host, branches, &stream);
        tracing::info!(
            stream = %stream,
            feed = ?key.feed,
            "webrtc viewer {id} offered"
        );
        Ok(answer)
    }

    fn resource(&mut self, id: ResourceId) -> Option<Resource> {
        let s = lock(&self.rtc.state);
        let (kind, generation) = s.host.session(&id)?;
        let target = Self::target(kind);
        Some(Resource { target, generation })
    }

    fn trickle(&mut self, _: ResourceId, _: &SdpFrag) -> Result<(), CreateError> {
        // ICE-lite: the client's checks find us; its candidates are not needed.
        Ok(())
    }

    fn restart_ice(&mut self, id: ResourceId, frag: &SdpFrag) -> Result<IceParams, CreateError> {
        let ice = frag.ice.as_ref().ok_or_else(|| {
            CreateError::BadSdp("an ICE restart needs ice-ufrag and ice-pwd".into())
        })?;
        let mut s = lock(&self.rtc.state);
        let ours = s
            .host
            .restart_ice(Instant::now(), id, &ice.ufrag, &ice.pwd)
            .map_err(|e| match e {
                rts_webrtc::Error::Usage("no such session") => {
                    CreateError::NotFound(format!("session {id}"))
                }
                e => CreateError::BadSdp(format!("ICE restart refused: {e}")),
            })?;
        tracing::info!("webrtc session {id}: ICE restart");
        Ok(IceParams {
            ufrag: ours.ufrag,
            pwd: ours.pwd,
        })
    }

    fn delete(&mut self, id: ResourceId) {
        lock(&self.rtc.state).host.close(Instant::now(), id);
    }
}
