//! The I/O driver of the WebRTC examples: one UDP socket, rts-webrtc's
//! [`Host`] for every session, WHIP/WHEP over axum through rts-whip. The
//! examples supply what a session is for and what to do with its events
//! ([`App`]); everything else (demux, ICE/DTLS, fan-out, keyframe policy,
//! limits) is the host's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use rts::webrtc::host::{Host, HostConfig, HostEvent, SessionKind};
use rts::webrtc::{Certificate, Peer, Role};
use rts::whip::{
    self, Backend, CreateError, Denied, IceParams, Kind, Resource, ResourceId, SdpFrag, Target,
};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// The host of the examples: sessions keyed by resource id, streams by the
/// WHIP/WHEP target.
pub(crate) type ExampleHost = Host<ResourceId, Target>;

/// What an example does with its sessions.
pub(crate) trait App: Send + 'static {
    /// Whether a session for `target` may start (WHEP: the stream exists;
    /// WHIP: it is not already publishing).
    fn admit(&mut self, host: &ExampleHost, target: &Target) -> Result<(), CreateError>;
    /// A host event.
    fn on_event(
        &mut self,
        now: Instant,
        host: &mut ExampleHost,
        event: HostEvent<ResourceId, Target>,
    );
    /// Every loop turn: hand media to the host.
    fn tick(&mut self, _now: Instant, _host: &mut ExampleHost) {}
}

struct State<A> {
    host: ExampleHost,
    app: A,
}

/// A running driver.
pub(crate) struct Driver<A> {
    state: Arc<Mutex<State<A>>>,
    pub(crate) wake: Arc<Notify>,
    socket: Arc<UdpSocket>,
    pub(crate) udp_addr: SocketAddr,
    certificate: Certificate,
}

impl<A> Clone for Driver<A> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            wake: self.wake.clone(),
            socket: self.socket.clone(),
            udp_addr: self.udp_addr,
            certificate: self.certificate.clone(),
        }
    }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("os randomness");
    u32::from_be_bytes(b) | 1
}

/// The rts-whip backend of one request: the offer is answered outside the
/// lock the UDP loop uses.
struct Request<'a, A> {
    driver: &'a Driver<A>,
    remote: SocketAddr,
}

impl<A: App> Backend for Request<'_, A> {
    fn authorize(&mut self, _: &http::request::Parts, _: &Target) -> Result<(), Denied> {
        Ok(())
    }

    fn create(
        &mut self,
        target: &Target,
        offer: &str,
        id: ResourceId,
    ) -> Result<String, CreateError> {
        {
            let mut guard = self.driver.lock();
            let State { host, app } = &mut *guard;
            app.admit(host, target)?;
        }
        let role = match target.kind {
            Kind::Whep => Role::Viewer,
            Kind::Whip => Role::Publisher,
        };
        let local = self.driver.udp_addr;
        let config = rts::webrtc::Config {
            local_addr: local,
            candidates: vec![local],
            certificate: self.driver.certificate.clone(),
            // Empty: the stack generates random credentials, and new ones
            // at each ICE restart (it cannot be handed new ones later).
            ice_ufrag: String::new(),
            ice_pwd: String::new(),
            video_ssrc: random_u32(),
            audio_ssrc: random_u32(),
            idle_timeout: Duration::from_secs(10),
            stats_interval: Duration::from_secs(1),
            tcp_candidates: Vec::new(),
        };
        let (peer, answer) = Peer::accept(Instant::now(), offer, role, &config)
            .map_err(|e| CreateError::BadSdp(e.to_string()))?;
        let kind = match target.kind {
            Kind::Whep => SessionKind::Play(target.clone()),
            Kind::Whip => SessionKind::Publish(target.clone()),
        };
        self.driver
            .lock()
            .host
            .insert(Instant::now(), id, kind, peer, self.remote.ip())
            .map_err(|e| CreateError::Unavailable(e.to_string()))?;
        Ok(answer)
    }

    fn resource(&mut self, id: ResourceId) -> Option<Resource> {
        let s = self.driver.lock();
        let (kind, generation) = s.host.session(&id)?;
        Some(Resource {
            target: kind.stream().clone(),
            generation,
        })
    }

    fn trickle(&mut self, _: ResourceId, _: &SdpFrag) -> Result<(), CreateError> {
        // ICE-lite: the client's checks find us; its candidates are not needed.
        Ok(())
    }

    fn restart_ice(&mut self, id: ResourceId, frag: &SdpFrag) -> Result<IceParams, CreateError> {
        let ice = frag.ice.as_ref().ok_or_else(|| {
            CreateError::BadSdp("an ICE restart needs ice-ufrag and ice-pwd".into())
        })?;
        let ours = self
            .driver
            .lock()
            .host
            .restart_ice(Instant::now(), id, &ice.ufrag, &ice.pwd)
            .map_err(|e| CreateError::NotFound(format!("session {id}: {e}")))?;
        Ok(IceParams {
            ufrag: ours.ufrag,
            pwd: ours.pwd,
        })
    }

    fn delete(&mut self, id: ResourceId) {
        self.driver.lock().host.close(Instant::now(), id);
    }
}

impl<A: App> Driver<A> {
    /// Binds the UDP socket.
    pub(crate) async fn bind(udp: SocketAddr, app: A) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind(udp).await?;
        let udp_addr = socket.local_addr()?;
        Ok(Self {
            state: Arc::new(Mutex::new(State {
                host: Host::new(HostConfig::default()),
                app,
            })),
            wake: Arc::new(Notify::new()),
            socket: Arc::new(socket),
            udp_addr,
            certificate: Certificate::generate()?,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<A>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves WHIP/WHEP on `listener` (every path goes to rts-whip).
    pub(crate) async fn serve_http(self, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        let app = axum::Router::new().fallback(
            move |ConnectInfo(remote): ConnectInfo<SocketAddr>, req: axum::extract::Request| {
                let driver = self.clone();
                async move { driver.http(remote, req).await }
            },
        );
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await?;
        Ok(())
    }

    async fn http(
        &self,
        remote: SocketAddr,
        req: axum::extract::Request,
    ) -> axum::response::Response {
        let (parts, body) = req.into_parts();
        let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
            return http::Response::builder()
                .status(413)
                .body(axum::body::Body::from(
                    "request body too large or unreadable",
                ))
                .expect("static response");
        };
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).expect("os randomness");
        let server = whip::Server::new(whip::Config::default());
        let mut backend = Request {
            driver: self,
            remote,
        };
        let response = server.handle(http::Request::from_parts(parts, body), &mut backend, random);
        self.wake.notify_one();
        response.map(axum::body::Body::from)
    }

    /// Runs the UDP side: receive, timers, the app's media, transmit.
    pub(crate) async fn run_udp(self) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 2048];
        let mut out = Vec::new();
        loop {
            let next = {
                let mut guard = self.lock();
                let State { host, app } = &mut *guard;
                let now = Instant::now();
                app.tick(now, host);
                if host.poll_timeout().is_some_and(|t| t <= now) {
                    host.handle_timeout(now);
                }
                while let Some(ev) = host.poll_event() {
                    app.on_event(now, host, ev);
                }
                while let Some(t) = host.poll_transmit() {
                    out.push(t);
                }
                let soon = now + Duration::from_millis(20);
                host.poll_timeout().map_or(soon, |t| t.min(soon))
            };
            for t in out.drain(..) {
                let _ = self.socket.send_to(&t.contents, t.destination).await;
            }
            let sleep =
                tokio::time::sleep_until(tokio::time::Instant::from_std(next.max(Instant::now())));
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    if let Some(datagram) = buf.get(..n) {
                        self.lock().host.handle_datagram(Instant::now(), from, datagram);
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
