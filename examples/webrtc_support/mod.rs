//! Shared I/O driver of the WebRTC examples: one UDP socket for every peer
//! (rts-webrtc's demux router), WHIP/WHEP over axum through rts-whip.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rts::webrtc::{self, Certificate, Event, Peer, Role, Router};
use rts::whip::{self, Backend, CreateError, Denied, IceParams, Kind, ResourceId, SdpFrag, Target};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// What an example does with its sessions.
pub(crate) trait App: Send + 'static {
    /// Whether a session for `target` may start (WHEP: the stream exists;
    /// WHIP: it is not already publishing).
    fn admit(&mut self, target: &Target) -> Result<(), CreateError>;
    /// An event of the session `id`.
    fn on_event(
        &mut self,
        now: Instant,
        id: ResourceId,
        target: &Target,
        peer: &mut Peer,
        event: Event,
    );
    /// The session `id` is gone.
    fn on_closed(&mut self, id: ResourceId, target: &Target);
}

/// One session.
pub(crate) struct Session {
    pub(crate) target: Target,
    pub(crate) peer: Peer,
    pub(crate) created: Instant,
}

/// Sessions plus the router; the rts-whip backend.
pub(crate) struct Sessions<A> {
    pub(crate) sessions: HashMap<ResourceId, Session>,
    pub(crate) router: Router<ResourceId>,
    pub(crate) app: A,
    certificate: Certificate,
    local_addr: SocketAddr,
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("os randomness");
    u32::from_be_bytes(b)
}

impl<A: App> Backend for Sessions<A> {
    fn authorize(&mut self, _: &http::request::Parts, _: &Target) -> Result<(), Denied> {
        Ok(())
    }

    fn create(
        &mut self,
        target: &Target,
        offer: &str,
        id: ResourceId,
    ) -> Result<String, CreateError> {
        self.app.admit(target)?;
        if target.kind == Kind::Whip
            && self
                .sessions
                .values()
                .any(|s| s.target == *target && !s.peer.is_closed())
        {
            return Err(CreateError::AlreadyPublishing(format!(
                "{}/{}",
                target.app, target.stream
            )));
        }
        let role = match target.kind {
            Kind::Whep => Role::Viewer,
            Kind::Whip => Role::Publisher,
        };
        let config = webrtc::Config {
            local_addr: self.local_addr,
            candidates: vec![self.local_addr],
            certificate: self.certificate.clone(),
            // Empty: the stack generates random credentials, and new ones
            // at each ICE restart (it cannot be handed new ones later).
            ice_ufrag: String::new(),
            ice_pwd: String::new(),
            video_ssrc: random_u32(),
            audio_ssrc: random_u32(),
            idle_timeout: Duration::from_secs(10),
            stats_interval: Duration::from_secs(1),
        };
        let (peer, answer) = Peer::accept(Instant::now(), offer, role, &config)
            .map_err(|e| CreateError::BadSdp(e.to_string()))?;
        self.router.insert(peer.ice_ufrag(), id);
        self.sessions.insert(
            id,
            Session {
                target: target.clone(),
                peer,
                created: Instant::now(),
            },
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

/// Everything the HTTP side and the UDP loop share.
pub(crate) struct Shared<A> {
    pub(crate) whip: whip::Server,
    pub(crate) backend: Sessions<A>,
}

/// A running host.
pub(crate) struct Host<A> {
    pub(crate) shared: Arc<Mutex<Shared<A>>>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) udp_addr: SocketAddr,
}

impl<A> Clone for Host<A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            wake: self.wake.clone(),
            socket: self.socket.clone(),
            udp_addr: self.udp_addr,
        }
    }
}

impl<A: App> Host<A> {
    /// Binds the UDP socket.
    pub(crate) async fn bind(udp: SocketAddr, app: A) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind(udp).await?;
        let udp_addr = socket.local_addr()?;
        let backend = Sessions {
            sessions: HashMap::new(),
            router: Router::new(4096),
            app,
            certificate: Certificate::generate()?,
            local_addr: udp_addr,
        };
        Ok(Self {
            shared: Arc::new(Mutex::new(Shared {
                whip: whip::Server::new(whip::Config::default()),
                backend,
            })),
            wake: Arc::new(Notify::new()),
            socket: Arc::new(socket),
            udp_addr,
        })
    }

    /// Serves WHIP/WHEP on `listener` (every path goes to rts-whip).
    pub(crate) async fn serve_http(self, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let host = self.clone();
            async move { host.http(req).await }
        });
        axum::serve(listener, app).await?;
        Ok(())
    }

    async fn http(&self, req: axum::extract::Request) -> axum::response::Response {
        let (parts, body) = req.into_parts();
        let limit = 64 * 1024;
        let body = match axum::body::to_bytes(body, limit).await {
            Ok(b) => b,
            Err(_) => {
                return http::Response::builder()
                    .status(413)
                    .body(axum::body::Body::from(
                        "request body too large or unreadable",
                    ))
                    .expect("static response");
            }
        };
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).expect("os randomness");
        let response = {
            let mut guard = self.shared.lock().expect("lock");
            let s = &mut *guard;
            s.whip.handle(
                http::Request::from_parts(parts, body),
                &mut s.backend,
                random,
            )
        };
        self.wake.notify_one();
        response.map(axum::body::Body::from)
    }

    /// Runs the UDP side: receive, route, timers, transmit. `media` is called
    /// on every loop turn with the sessions (to push RTP to viewers).
    pub(crate) async fn run_udp(
        self,
        mut media: impl FnMut(Instant, &mut Sessions<A>) + Send,
    ) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 2048];
        let mut out: Vec<(SocketAddr, bytes::BytesMut)> = Vec::new();
        loop {
            let next = {
                let mut guard = self.shared.lock().expect("lock");
                let s = &mut *guard;
                let now = Instant::now();
                media(now, &mut s.backend);
                let mut next = now + Duration::from_millis(20);
                let mut closed = Vec::new();
                let b = &mut s.backend;
                for (id, sess) in b.sessions.iter_mut() {
                    if sess.peer.poll_timeout().is_some_and(|t| t <= now) {
                        let _ = sess.peer.handle_timeout(now);
                    }
                    while let Some(ev) = sess.peer.poll_event() {
                        if matches!(ev, Event::Connected) {
                            eprintln!(
                                "session {id} connected {} ms after its offer",
                                sess.created.elapsed().as_millis()
                            );
                        }
                        b.app.on_event(now, *id, &sess.target, &mut sess.peer, ev);
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
                    if let Some(sess) = b.sessions.remove(&id) {
                        b.router.remove(&id);
                        s.whip.remove(id);
                        b.app.on_closed(id, &sess.target);
                    }
                }
                next
            };
            for (to, bytes) in out.drain(..) {
                let _ = self.socket.send_to(&bytes, to).await;
            }
            let sleep =
                tokio::time::sleep_until(tokio::time::Instant::from_std(next.max(Instant::now())));
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let Some(datagram) = buf.get(..n) else { continue };
                    let mut guard = self.shared.lock().expect("lock");
                    let b = &mut guard.backend;
                    if let Some(id) = b.router.route(from, datagram)
                        && let Some(sess) = b.sessions.get_mut(&id)
                    {
                        let _ = sess.peer.handle_receive(Instant::now(), from, datagram);
                    }
                }
                _ = sleep => {}
                _ = self.wake.notified() => {}
            }
        }
    }
}

/// Parses `--listen ADDR` and `--udp ADDR`.
pub(crate) fn parse_args(
    default_http: &str,
    default_udp: &str,
) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    use lexopt::prelude::*;
    let mut listen: SocketAddr = default_http.parse()?;
    let mut udp: SocketAddr = default_udp.parse()?;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("listen") => listen = parser.value()?.parse()?,
            Long("udp") => udp = parser.value()?.parse()?,
            Long("help") => {
                println!("usage: [--listen 127.0.0.1:8080] [--udp 127.0.0.1:8000]");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok((listen, udp))
}
