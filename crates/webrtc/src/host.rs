//! The WebRTC host: every peer of one UDP socket, sans-IO.
//!
//! Shaped like quinn-proto's `Endpoint`: the caller owns the socket and the
//! clock, and drives the host with [`Host::handle_datagram`] and
//! [`Host::handle_timeout`], then drains [`Host::poll_transmit`],
//! [`Host::poll_event`] and [`Host::poll_timeout`]. Time comes in as `now`;
//! the host reads no clock and draws no randomness (session ids and SSRCs
//! come from the caller).
//!
//! The host owns:
//! - the sessions: one [`Peer`] each, made from an offer *outside* the host
//!   ([`Peer::accept`] parses SDP and builds the stack's peer connection,
//!   which is the slow part) and handed in with [`Host::insert`];
//! - the UDP demultiplexer ([`Router`]): an address is bound to a session
//!   only by a STUN check that authenticates with its password, and only
//!   such checks, SRTP and SRTCP keep a session alive;
//! - the resource state a WHIP/WHEP endpoint needs: which session an id is,
//!   and how many ICE restarts it had (its ETag);
//! - the fan-out of each stream's packets to its viewers, through one
//!   bounded [`ViewerQueue`] per viewer;
//! - the join, PLI and keyframe policy: a stream whose source can make a
//!   keyframe on request ([`Keyframes::OnRequest`], a transcoder) gets one
//!   [`HostEvent::KeyframeNeeded`] per [`HostConfig::keyframe_interval`] at
//!   most, for new viewers, viewer PLI/FIR and viewers that fell behind; a
//!   stream that cannot ([`Keyframes::FromSource`], a passthrough) starts a
//!   new viewer from the packets of its cached GOP;
//! - the limits: sessions in all, sessions not yet connected per remote IP,
//!   addresses per session, and a deadline to complete ICE and DTLS.
//!
//! A panic inside one session (in the stack) ends that session only: it is
//! reported as [`HostEvent::Closed`] and counted in [`HostStats::panics`].

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::demux::{Routed, Router};
use crate::error::Error;
use crate::fanout::{Push, Queued, ViewerQueue};
use crate::peer::{Event, IceCredentials, Peer, RtpPacket, Transmit, Transport};
use crate::sdp::{Codec, MediaKind};

/// Limits and policy of a [`Host`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Most sessions at once.
    pub max_sessions: usize,
    /// Most sessions not yet connected (ICE and DTLS) from one remote IP
    /// (the address the offer came from).
    pub max_pending_per_ip: usize,
    /// A session that has not completed ICE and DTLS this long after it
    /// was inserted is closed.
    pub connect_timeout: Duration,
    /// Keyframe requests to an [`Keyframes::OnRequest`] source are at most
    /// this frequent; requests in between are coalesced.
    pub keyframe_interval: Duration,
    /// Packets a viewer's queue holds before it drops to the next keyframe.
    pub viewer_queue: usize,
    /// Packets of the current GOP kept per stream for new viewers of a
    /// [`Keyframes::FromSource`] stream (a longer GOP is not kept).
    pub gop_packets: usize,
    /// Remote addresses bound to one session at most.
    pub addresses_per_session: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            max_sessions: 2000,
            max_pending_per_ip: 64,
            connect_timeout: Duration::from_secs(10),
            keyframe_interval: Duration::from_millis(300),
            viewer_queue: 4096,
            gop_packets: 8192,
            addresses_per_session: 8,
        }
    }
}

/// What a session does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionKind<K> {
    /// Plays stream `K` (WHEP): the host fans the stream's packets out to it.
    Play(K),
    /// Publishes stream `K` (WHIP): its RTP comes out as [`HostEvent::Rtp`].
    Publish(K),
}

impl<K> SessionKind<K> {
    /// The stream.
    pub fn stream(&self) -> &K {
        match self {
            SessionKind::Play(k) | SessionKind::Publish(k) => k,
        }
    }
}

/// How a stream's source makes keyframes, which decides how a viewer
/// starts and what a PLI does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keyframes {
    /// The source makes one when asked (a transcoder): new viewers, PLI and
    /// FIR become [`HostEvent::KeyframeNeeded`].
    OnRequest,
    /// Only the source's own keyframes (a passthrough): a new viewer gets
    /// the packets of the cached GOP.
    #[default]
    FromSource,
    /// A remote encoder's packets, forwarded (a WHIP publisher): a new
    /// viewer gets the cached GOP at once, and new viewers, PLI and FIR
    /// also become [`HostEvent::KeyframeNeeded`] (coalesced) for the
    /// caller to pass on as a PLI; encoders that honour it send a fresh
    /// keyframe a round trip later, others their next scheduled one.
    Forwarded,
}

/// Why [`Host::insert`] refused a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The host has [`HostConfig::max_sessions`] sessions.
    #[error("too many WebRTC sessions on this server ({0}); try again later")]
    TooManySessions(usize),
    /// This IP has [`HostConfig::max_pending_per_ip`] sessions that have not
    /// connected yet.
    #[error(
        "too many WebRTC sessions from {ip} are still connecting ({count}); let them connect or end them first"
    )]
    TooManyPending {
        /// The remote IP.
        ip: IpAddr,
        /// Its sessions not yet connected.
        count: usize,
    },
    /// The id is in use.
    #[error("session id in use; retry")]
    DuplicateId,
}

/// What the host reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum HostEvent<I, K> {
    /// ICE and DTLS completed.
    Connected {
        /// The session.
        id: I,
        /// What it does.
        kind: SessionKind<K>,
        /// Time from [`Host::insert`].
        after: Duration,
    },
    /// The session is gone (closed, failed, timed out, or its stream ended).
    Closed {
        /// The session.
        id: I,
        /// What it did.
        kind: SessionKind<K>,
        /// Why.
        reason: &'static str,
    },
    /// Stream `K` (an [`Keyframes::OnRequest`] or [`Keyframes::Forwarded`]
    /// source) should make a keyframe.
    KeyframeNeeded {
        /// The stream.
        stream: K,
    },
    /// The last viewer of stream `K` left (or its stream was ended).
    StreamIdle {
        /// The stream.
        stream: K,
    },
    /// A publisher's RTP packet (decrypted).
    Rtp {
        /// The session.
        id: I,
        /// Its stream.
        stream: K,
        /// Audio or video.
        media: MediaKind,
        /// The negotiated codec of its payload type.
        codec: Codec,
        /// The packet.
        packet: RtpPacket,
    },
}

/// Host-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Datagrams no session took (unknown source, unauthenticated checks).
    pub datagrams_dropped: u64,
    /// Sessions ended by a panic inside them.
    pub panics: u64,
    /// Sessions closed for not connecting within the deadline.
    pub connect_timeouts: u64,
    /// Keyframe requests sent to sources.
    pub keyframe_requests: u64,
    /// Times a viewer's queue overflowed.
    pub viewer_overflows: u64,
}

struct Session<K> {
    kind: SessionKind<K>,
    peer: Peer,
    /// Viewers only.
    queue: Option<ViewerQueue>,
    created: Instant,
    remote_ip: IpAddr,
    connected: bool,
    restarts: u32,
    /// The peer's next timer, as of the last time the host touched it
    /// (asking the stack for every peer on every turn costs more than the
    /// media).
    deadline: Option<Instant>,
}

struct Fan<I> {
    viewers: Vec<I>,
    keyframes: Keyframes,
    /// Packets since the last keyframe; `None` while the GOP is longer
    /// than [`HostConfig::gop_packets`].
    gop: Option<Vec<Queued>>,
    last_keyframe_request: Option<Instant>,
    /// A keyframe was asked for within the interval: sent when it ends.
    keyframe_pending: bool,
}

impl<I> Fan<I> {
    fn new() -> Self {
        Fan {
            viewers: Vec::new(),
            keyframes: Keyframes::default(),
            gop: None,
            last_keyframe_request: None,
            keyframe_pending: false,
        }
    }
}

/// Every peer of one UDP socket (see the module docs).
pub struct Host<I, K> {
    config: HostConfig,
    sessions: HashMap<I, Session<K>>,
    router: Router<I>,
    streams: HashMap<K, Fan<I>>,
    pending_by_ip: HashMap<IpAddr, usize>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<HostEvent<I, K>>,
    stats: HostStats,
}

impl<I, K> Debug for Host<I, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("sessions", &self.sessions.len())
            .field("streams", &self.streams.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<I, K> Host<I, K>
where
    I: Copy + Eq + Hash + Debug,
    K: Clone + Eq + Hash + Debug,
{
    /// An empty host.
    pub fn new(config: HostConfig) -> Self {
        let max_addrs = config
            .max_sessions
            .saturating_mul(config.addresses_per_session)
            .max(16);
        Host {
            router: Router::new(max_addrs, config.addresses_per_session),
            config,
            sessions: HashMap::new(),
            streams: HashMap::new(),
            pending_by_ip: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: HostStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> HostStats {
        self.stats
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// What session `id` does, and its ICE restarts so far (the generation
    /// of its WHIP/WHEP ETag); `None` when it does not exist (any more).
    pub fn session(&self, id: &I) -> Option<(&SessionKind<K>, u32)> {
        self.sessions.get(id).map(|s| (&s.kind, s.restarts))
    }

    /// Every session and what it does.
    pub fn sessions(&self) -> impl Iterator<Item = (&I, &SessionKind<K>)> {
        self.sessions.iter().map(|(id, s)| (id, &s.kind))
    }

    /// Counters of session `id`'s peer.
    pub fn peer_stats(&self, id: &I) -> Option<crate::peer::Stats> {
        self.sessions.get(id).map(|s| s.peer.stats())
    }

    /// Whether session `id` has completed ICE and DTLS.
    pub fn is_connected(&self, id: &I) -> bool {
        self.sessions.get(id).is_some_and(|s| s.connected)
    }

    /// Viewers of `stream` (connected or not).
    pub fn viewers(&self, stream: &K) -> usize {
        self.streams.get(stream).map_or(0, |f| f.viewers.len())
    }

    /// The streams that have viewers.
    pub fn streams(&self) -> impl Iterator<Item = &K> {
        self.streams.keys()
    }

    /// Sessions not yet connected from `ip`.
    pub fn pending_from(&self, ip: IpAddr) -> usize {
        self.pending_by_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Adds a session whose peer was made from an offer ([`Peer::accept`])
    /// for a remote at `remote_ip` (where the offer came from). It must
    /// connect within [`HostConfig::connect_timeout`].
    pub fn insert(
        &mut self,
        now: Instant,
        id: I,
        kind: SessionKind<K>,
        peer: Peer,
        remote_ip: IpAddr,
    ) -> Result<(), Refused> {
        if self.sessions.contains_key(&id) {
            return Err(Refused::DuplicateId);
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(Refused::TooManySessions(self.sessions.len()));
        }
        let pending = self.pending_from(remote_ip);
        if pending >= self.config.max_pending_per_ip {
            return Err(Refused::TooManyPending {
                ip: remote_ip,
                count: pending,
            });
        }
        let creds = peer.ice_credentials();
        let (ufrag, pwd) = creds
            .map(|c| (c.ufrag, c.pwd))
            .unwrap_or_else(|| (peer.ice_ufrag().to_owned(), String::new()));
        self.router.insert(&ufrag, &pwd, id);
        let n = self.pending_by_ip.entry(remote_ip).or_default();
        *n = n.saturating_add(1);
        let queue = match &kind {
            SessionKind::Play(stream) => {
                self.streams
                    .entry(stream.clone())
                    .or_insert_with(Fan::new)
                    .viewers
                    .push(id);
                Some(ViewerQueue::new(self.config.viewer_queue))
            }
            SessionKind::Publish(_) => None,
        };
        self.sessions.insert(
            id,
            Session {
                kind,
                peer,
                queue,
                created: now,
                remote_ip,
                connected: false,
                restarts: 0,
                deadline: None,
            },
        );
        self.drive(now, id);
        Ok(())
    }

    /// ICE restart of session `id` with the remote's new credentials (a
    /// WHIP/WHEP PATCH); returns ours. Checks with the old credentials are
    /// no longer routed.
    pub fn restart_ice(
        &mut self,
        now: Instant,
        id: I,
        remote_ufrag: &str,
        remote_pwd: &str,
    ) -> Result<IceCredentials, Error> {
        let result = self
            .with_peer(id, |peer| peer.restart_ice(now, remote_ufrag, remote_pwd))
            .ok_or(Error::Usage("no such session"))??;
        self.router
            .replace_credentials(&id, &result.ufrag, &result.pwd);
        if let Some(s) = self.sessions.get_mut(&id) {
            s.restarts = s.restarts.saturating_add(1);
        }
        self.drive(now, id);
        Ok(result)
    }

    /// Asks publisher `id` for a keyframe (PLI on its video).
    pub fn request_keyframe(&mut self, now: Instant, id: I) {
        self.with_peer(id, |peer| {
            let _ = peer.request_keyframe(now);
        });
        self.drive(now, id);
    }

    /// Ends session `id` (a WHIP/WHEP DELETE): DTLS close_notify goes out
    /// and [`HostEvent::Closed`] follows.
    pub fn close(&mut self, now: Instant, id: I) {
        self.with_peer(id, Peer::close);
        self.drive(now, id);
    }

    /// Closes every session (server shutdown).
    pub fn close_all(&mut self, now: Instant) {
        let ids: Vec<I> = self.sessions.keys().copied().collect();
        for id in ids {
            self.close(now, id);
        }
    }

    /// One UDP datagram from `src`.
    pub fn handle_datagram(&mut self, now: Instant, src: SocketAddr, datagram: &[u8]) {
        self.handle_datagram_on(now, src, Transport::Udp, datagram);
    }

    /// One datagram from `src` over `transport`: for ICE-TCP (RFC 6544),
    /// one RFC 4571 frame (without its length) from the connection of
    /// `src`. What the host sends back to it is a [`Transmit`] with
    /// [`Transport::Tcp`], to be framed onto that connection.
    pub fn handle_datagram_on(
        &mut self,
        now: Instant,
        src: SocketAddr,
        transport: Transport,
        datagram: &[u8],
    ) {
        let Some(Routed { key, authenticated }) = self.router.route_on(transport, src, datagram)
        else {
            self.stats.datagrams_dropped = self.stats.datagrams_dropped.saturating_add(1);
            return;
        };
        let handled = self.with_peer(key, |peer| {
            if authenticated {
                peer.mark_alive(now);
            }
            // What the stack refuses (a datagram it cannot parse) leaves
            // the session as it was.
            let _ = peer.handle_receive_on(now, src, transport, datagram);
        });
        if handled.is_some() {
            self.drive(now, key);
        }
    }

    /// Timers: peers' own, connect deadlines, coalesced keyframe requests.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.config.connect_timeout;
        let due: Vec<I> = self
            .sessions
            .iter_mut()
            .filter_map(|(id, s)| {
                let late = !s.connected && s.created.checked_add(timeout).is_none_or(|d| d <= now);
                (late || s.deadline.is_some_and(|t| t <= now)).then_some(*id)
            })
            .collect();
        for id in due {
            let late = self
                .sessions
                .get(&id)
                .is_some_and(|s| !s.connected && self.connect_deadline(s) <= now);
            if late {
                self.stats.connect_timeouts = self.stats.connect_timeouts.saturating_add(1);
                self.end(id, "ICE and DTLS did not complete in time");
                continue;
            }
            self.with_peer(id, |peer| {
                let _ = peer.handle_timeout(now);
            });
            self.drive(now, id);
        }
        let pending: Vec<K> = self
            .streams
            .iter()
            .filter(|(_, f)| f.keyframe_pending && self.keyframe_due(f, now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in pending {
            self.want_keyframe(now, &k);
        }
    }

    fn connect_deadline(&self, s: &Session<K>) -> Instant {
        s.created
            .checked_add(self.config.connect_timeout)
            .unwrap_or(s.created)
    }

    fn keyframe_due(&self, f: &Fan<I>, now: Instant) -> bool {
        f.last_keyframe_request
            .is_none_or(|t| now.saturating_duration_since(t) >= self.config.keyframe_interval)
    }

    /// The next instant [`Host::handle_timeout`] should be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut keep = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        let timeout = self.config.connect_timeout;
        for s in self.sessions.values() {
            if let Some(t) = s.deadline {
                keep(t);
            }
            if !s.connected {
                keep(s.created.checked_add(timeout).unwrap_or(s.created));
            }
        }
        for f in self.streams.values() {
            if f.keyframe_pending
                && let Some(t) = f.last_keyframe_request
            {
                keep(t.checked_add(self.config.keyframe_interval).unwrap_or(t));
            }
        }
        next
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<HostEvent<I, K>> {
        self.events.pop_front()
    }

    /// How stream `stream`'s source makes keyframes (default
    /// [`Keyframes::FromSource`]).
    pub fn set_keyframes(&mut self, stream: &K, keyframes: Keyframes) {
        if let Some(f) = self.streams.get_mut(stream) {
            f.keyframes = keyframes;
        }
    }

    /// Fans one access unit's packets out to the connected viewers of
    /// `stream` (payloads are shared; each viewer's peer rewrites payload
    /// type and SSRC and encrypts). A payload with a prefix (an FU-A
    /// header before a slice of the NAL unit) is made contiguous once here,
    /// not once per viewer.
    pub fn send_video(
        &mut self,
        now: Instant,
        stream: &K,
        packets: &[rts_rtp::Packet],
        keyframe: bool,
    ) {
        let items = packets.iter().enumerate().map(|(i, p)| Queued {
            kind: MediaKind::Video,
            packet: rts_rtp::Packet {
                payload: p.payload.contiguous(),
                ..p.clone()
            },
            keyframe_start: keyframe && i == 0,
        });
        self.fan_out(now, stream, items.collect());
    }

    /// Fans one audio packet out to the connected viewers of `stream`.
    pub fn send_audio(&mut self, now: Instant, stream: &K, packet: &rts_rtp::Packet) {
        let item = Queued {
            kind: MediaKind::Audio,
            packet: rts_rtp::Packet {
                payload: packet.payload.contiguous(),
                ..packet.clone()
            },
            keyframe_start: false,
        };
        self.fan_out(now, stream, vec![item]);
    }

    /// Ends every viewer of `stream` (its source is gone) with `reason`.
    pub fn end_stream(&mut self, stream: &K, reason: &'static str) {
        let viewers = self
            .streams
            .get(stream)
            .map(|f| f.viewers.clone())
            .unwrap_or_default();
        for id in viewers {
            self.end(id, reason);
        }
    }

    fn fan_out(&mut self, now: Instant, stream: &K, items: Vec<Queued>) {
        let limit = self.config.gop_packets;
        let Some(fan) = self.streams.get_mut(stream) else {
            return;
        };
        for item in items.iter().filter(|i| i.kind == MediaKind::Video) {
            if item.keyframe_start {
                fan.gop = Some(Vec::new());
            }
            if let Some(gop) = &mut fan.gop {
                if gop.len() >= limit {
                    fan.gop = None;
                } else {
                    gop.push(item.clone());
                }
            }
        }
        let viewers = fan.viewers.clone();
        let mut overflowed = false;
        for id in viewers {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            if !s.connected {
                continue;
            }
            if let Some(q) = s.queue.as_mut() {
                for item in &items {
                    if q.push(item.clone()) == Push::Overflowed {
                        overflowed = true;
                        self.stats.viewer_overflows = self.stats.viewer_overflows.saturating_add(1);
                    }
                }
            }
            self.flush_queue(now, id);
        }
        if overflowed {
            self.keyframe_for_viewers(now, stream);
        }
    }

    /// Sends what a viewer's queue holds.
    fn flush_queue(&mut self, now: Instant, id: I) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(mut q) = s.queue.take() else {
            return;
        };
        self.with_peer(id, |peer| {
            while let Some(item) = q.pop() {
                let _ = peer.send_rtp(now, item.kind, &item.packet);
            }
        });
        if let Some(s) = self.sessions.get_mut(&id) {
            s.queue = Some(q);
        }
        self.drive(now, id);
    }

    /// A viewer of `stream` needs a keyframe (it joined, sent PLI/FIR, or
    /// fell behind): asked of an on-request source, at most once per
    /// interval.
    fn keyframe_for_viewers(&mut self, now: Instant, stream: &K) {
        if self
            .streams
            .get(stream)
            .is_some_and(|f| f.keyframes != Keyframes::FromSource)
        {
            self.want_keyframe(now, stream);
        }
    }

    fn want_keyframe(&mut self, now: Instant, stream: &K) {
        let interval = self.config.keyframe_interval;
        let Some(f) = self.streams.get_mut(stream) else {
            return;
        };
        let due = f
            .last_keyframe_request
            .is_none_or(|t| now.saturating_duration_since(t) >= interval);
        if due {
            f.last_keyframe_request = Some(now);
            f.keyframe_pending = false;
            self.stats.keyframe_requests = self.stats.keyframe_requests.saturating_add(1);
            self.events.push_back(HostEvent::KeyframeNeeded {
                stream: stream.clone(),
            });
        } else {
            f.keyframe_pending = true;
        }
    }

    /// A viewer just connected: it starts at a keyframe, made by an
    /// on-request source or taken from the cached GOP.
    fn start_viewer(&mut self, now: Instant, id: I, stream: &K) {
        let Some(f) = self.streams.get(stream) else {
            return;
        };
        match f.keyframes {
            Keyframes::OnRequest => self.want_keyframe(now, stream),
            Keyframes::FromSource | Keyframes::Forwarded => {
                if f.keyframes == Keyframes::Forwarded {
                    self.want_keyframe(now, stream);
                }
                let Some(f) = self.streams.get(stream) else {
                    return;
                };
                let gop = f.gop.clone().unwrap_or_default();
                if let Some(q) = self.sessions.get_mut(&id).and_then(|s| s.queue.as_mut()) {
                    for item in gop {
                        if q.push(item) == Push::Overflowed {
                            // It waits for the source's next keyframe.
                            self.stats.viewer_overflows =
                                self.stats.viewer_overflows.saturating_add(1);
                        }
                    }
                }
                self.flush_queue(now, id);
            }
        }
    }

    /// Runs `f` on session `id`'s peer; a panic ends that session only.
    fn with_peer<R>(&mut self, id: I, f: impl FnOnce(&mut Peer) -> R) -> Option<R> {
        let s = self.sessions.get_mut(&id)?;
        match catch_unwind(AssertUnwindSafe(|| f(&mut s.peer))) {
            Ok(r) => Some(r),
            Err(_) => {
                self.stats.panics = self.stats.panics.saturating_add(1);
                self.end(
                    id,
                    "internal error in this session (contained; see the server log)",
                );
                None
            }
        }
    }

    /// Collects session `id`'s datagrams and events; removes it once closed.
    fn drive(&mut self, now: Instant, id: I) {
        let mut events = Vec::new();
        let drained = {
            let Some(s) = self.sessions.get_mut(&id) else {
                return;
            };
            let transmits = &mut self.transmits;
            catch_unwind(AssertUnwindSafe(|| {
                while let Some(t) = s.peer.poll_transmit() {
                    transmits.push_back(t);
                }
                while let Some(ev) = s.peer.poll_event() {
                    events.push(ev);
                }
                s.deadline = s.peer.poll_timeout();
                s.peer.is_closed()
            }))
        };
        let closed = match drained {
            Ok(c) => c,
            Err(_) => {
                self.stats.panics = self.stats.panics.saturating_add(1);
                self.end(
                    id,
                    "internal error in this session (contained; see the server log)",
                );
                return;
            }
        };
        let mut reason = "closed";
        for ev in events {
            match ev {
                Event::Connected => self.on_connected(now, id),
                Event::KeyframeRequested(_) => {
                    if let Some(SessionKind::Play(stream)) =
                        self.sessions.get(&id).map(|s| s.kind.clone())
                    {
                        self.keyframe_for_viewers(now, &stream);
                    }
                }
                Event::Disconnected { reason: r } => reason = r,
                Event::Rtp {
                    kind,
                    codec,
                    packet,
                } => {
                    if let Some(SessionKind::Publish(stream)) =
                        self.sessions.get(&id).map(|s| s.kind.clone())
                    {
                        self.events.push_back(HostEvent::Rtp {
                            id,
                            stream,
                            media: kind,
                            codec,
                            packet,
                        });
                    }
                }
                _ => {}
            }
        }
        if closed {
            self.end(id, reason);
        }
    }

    fn on_connected(&mut self, now: Instant, id: I) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.connected {
            return;
        }
        s.connected = true;
        let ip = s.remote_ip;
        let kind = s.kind.clone();
        let after = now.saturating_duration_since(s.created);
        self.unpend(ip);
        self.events.push_back(HostEvent::Connected {
            id,
            kind: kind.clone(),
            after,
        });
        if let SessionKind::Play(stream) = &kind {
            self.start_viewer(now, id, stream);
        }
    }

    fn unpend(&mut self, ip: IpAddr) {
        if let Some(n) = self.pending_by_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.pending_by_ip.remove(&ip);
            }
        }
    }

    /// Removes session `id` (its peer already closed, or to be dropped).
    fn end(&mut self, id: I, reason: &'static str) {
        let Some(mut s) = self.sessions.remove(&id) else {
            return;
        };
        // The close_notify of a peer that did not panic goes out.
        let closing = catch_unwind(AssertUnwindSafe(|| {
            s.peer.close();
            let mut out = Vec::new();
            while let Some(t) = s.peer.poll_transmit() {
                out.push(t);
            }
            out
        }));
        if let Ok(out) = closing {
            self.transmits.extend(out);
        }
        self.router.remove(&id);
        if !s.connected {
            self.unpend(s.remote_ip);
        }
        if let SessionKind::Play(stream) = &s.kind
            && let Some(f) = self.streams.get_mut(stream)
        {
            f.viewers.retain(|v| *v != id);
            if f.viewers.is_empty() {
                self.streams.remove(stream);
                self.events.push_back(HostEvent::StreamIdle {
                    stream: stream.clone(),
                });
            }
        }
        self.events.push_back(HostEvent::Closed {
            id,
            kind: s.kind,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{Certificate, Config, Role};

    fn session(host: &mut Host<u8, &'static str>, id: u8, now: Instant, cert: &Certificate) {
        let addr = SocketAddr::from(([127, 0, 0, 1], 50_000 + u16::from(id)));
        let cfg = |local: SocketAddr| Config {
            local_addr: local,
            candidates: vec![local],
            certificate: cert.clone(),
            ice_ufrag: String::new(),
            ice_pwd: String::new(),
            video_ssrc: u32::from(id) + 10,
            audio_ssrc: u32::from(id) + 20,
            idle_timeout: Duration::from_secs(10),
            stats_interval: Duration::from_secs(1),
            tcp_candidates: Vec::new(),
        };
        let (_client, offer) = Peer::offer(now, Role::Publisher, &cfg(addr)).unwrap();
        let server = SocketAddr::from(([127, 0, 0, 1], 8000));
        let (peer, _) = Peer::accept(now, &offer, Role::Viewer, &cfg(server)).unwrap();
        host.insert(now, id, SessionKind::Play("s"), peer, addr.ip())
            .unwrap();
    }

    #[test]
    fn a_panic_in_one_session_ends_only_that_session() {
        let now = Instant::now();
        let cert = Certificate::generate().unwrap();
        let mut host: Host<u8, &'static str> = Host::new(HostConfig::default());
        session(&mut host, 1, now, &cert);
        session(&mut host, 2, now, &cert);
        let r = host.with_peer(1, |_| -> u8 { panic!("a bug in the stack") });
        assert_eq!(r, None);
        assert_eq!(host.stats().panics, 1);
        assert!(host.session(&1).is_none());
        assert!(host.session(&2).is_some(), "the other session goes on");
        assert_eq!(host.viewers(&"s"), 1);
        let closed: Vec<_> = std::iter::from_fn(|| host.poll_event())
            .filter_map(|e| match e {
                HostEvent::Closed { id, reason, .. } => Some((id, reason)),
                _ => None,
            })
            .collect();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].0, 1);
        assert!(closed[0].1.contains("internal error"));
        // The pending count of its IP was released with it.
        assert_eq!(host.pending_from(IpAddr::from([127, 0, 0, 1])), 1);
    }
}
