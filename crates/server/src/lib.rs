//! rts-server: the streaming server composed of the rts protocol crates.
//!
//! This is where all I/O lives (tokio sockets, axum HTTP, UDP, the clock).
//! It takes RTMP publishers (`rts_rtmp` sessions), keeps each stream in the
//! [`hub`] and plays it over RTMP and HTTP-FLV (`rts_flv`) as published, and
//! over WebRTC (WHEP, `rts_whip` + `rts_webrtc`) through one conversion
//! branch per stream that removes B-frames (`rts_h264`) and turns AAC into
//! Opus (`rts_audio`) only when needed, packetized once (`rts_rtp`). Every
//! entry point is checked against the domain's auth_key signing
//! (`rts_auth`, Type A).
//!
//! | what | URL | signed uri |
//! |---|---|---|
//! | RTMP ingest | `rtmp://{ingest-domain}/{app}/{stream}?auth_key=…` | `/{app}/{stream}` |
//! | RTMP play | `rtmp://{streaming-domain}/{app}/{stream}?auth_key=…` | `/{app}/{stream}` |
//! | HTTP-FLV | `http://{streaming-domain}:8080/{app}/{stream}.flv?auth_key=…` | `/{app}/{stream}.flv` |
//! | ARTC (WHEP) | `artc://{streaming-domain}/{app}/{stream}?auth_key=…` = `POST http://…:8080/{app}/{stream}/whep?auth_key=…`, media on UDP 8000 | `/{app}/{stream}` |
//! | web player | `http://…:8080/play/{app}/{stream}?auth_key=…`, `/play?url=artc://…`, `/calibrator` | |
//! | API | `GET /api/v1/streams`, `GET /api/v1/streams/{app}/{stream}` (Bearer token) | |
//! | metrics | `GET /metrics` (Prometheus text) | |
//!
//! The domain of a request is `?vhost=NAME`, else the HTTP Host or the RTMP
//! tcUrl host; a host that matches no domain maps to the default ingest
//! domain for publishing and the default streaming domain for playing (see
//! [`config::Config::resolve`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), rts_server::Error> {
//! use rts_server::{Server, config::Config};
//!
//! let mut config = Config::default();
//! config.listen.rtmp = "127.0.0.1:0".parse().unwrap();
//! config.listen.http = "127.0.0.1:0".parse().unwrap();
//! config.listen.rtc = "127.0.0.1:0".parse().unwrap();
//! config.finish()?;
//! let server = Server::bind(config).await?;
//! println!("RTMP on {}, HTTP on {}", server.rtmp_addr(), server.http_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! # Errors and panics
//! Start-up problems (a bad configuration, a port in use) are [`Error`]s.
//! Once running, nothing a peer sends stops the server: a malformed RTMP
//! connection is closed alone, a refused request gets a 403/404 or an RTMP
//! rejection whose text says why, and errors are counted by kind in
//! `/metrics`. A session whose signed URL expires while it runs goes on.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used
    )
)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

mod accept;
mod access;
pub mod branch;
pub mod config;
mod http;
mod httpd;
pub mod hub;
mod ingest;
mod io;
pub mod metrics;
mod push;
mod relay;
mod rtc;
mod rtmp;
mod tls;
mod to_aac;
mod web;

pub use config::Config;
pub use hub::Hub;

/// A server that could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A listen address could not be bound.
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind {
        /// `RTMP` or `HTTP`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The operating system's random number generator does not work: the
    /// server would have no unguessable keys, session ids or SSRCs.
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(getrandom::Error),
    /// Another I/O failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) hub: Hub,
    /// AAC for the RTMP and FLV players of Opus streams.
    pub(crate) aac: to_aac::AacFeeds,
    pub(crate) rtc: rtc::Rtc,
}

/// A bound, not yet running server.
pub struct Server {
    shared: Arc<Shared>,
    rtmp: TcpListener,
    http: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("rtmp", &self.rtmp_addr())
            .field("http", &self.http_addr())
            .field("https", &self.tls.is_some())
            .finish()
    }
}

impl Server {
    /// Binds the RTMP and HTTP listeners. `config` should have been through
    /// [`Config::finish`] (keys and token filled); it is checked again.
    pub async fn bind(mut config: Config) -> Result<Server, Error> {
        // Every session id, SSRC and handshake needs it: fail here, loudly.
        getrandom::fill(&mut [0u8; 16]).map_err(Error::Randomness)?;
        config.finish()?;
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let bind = |what, addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { what, addr, source })
        };
        let rtmp = bind("RTMP", config.listen.rtmp).await?;
        let http = bind("HTTP", config.listen.http).await?;
        let rtc = rtc::Rtc::bind(&config).await?;
        let hub = Hub::new(config.limits, Arc::default());
        let aac = to_aac::AacFeeds::new(config.limits, hub.metrics().clone());
        Ok(Server {
            shared: Arc::new(Shared {
                config,
                hub,
                aac,
                rtc,
            }),
            rtmp,
            http,
            tls,
        })
    }

    /// The RTMP listen address (with the real port when 0 was asked).
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp
            .local_addr()
            .unwrap_or(self.shared.config.listen.rtmp)
    }

    /// The HTTP listen address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .unwrap_or(self.shared.config.listen.http)
    }

    /// The WebRTC UDP address (one socket for every peer).
    pub fn rtc_addr(&self) -> SocketAddr {
        self.shared.rtc.local_addr()
    }

    /// The WebRTC ICE-TCP address (`[webrtc] ice_tcp`).
    pub fn rtc_tcp_addr(&self) -> Option<SocketAddr> {
        self.shared.rtc.tcp_addr()
    }

    /// The configuration in use (keys and token filled in).
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Whether the HTTP port serves HTTPS (`[tls]` configured).
    pub fn https(&self) -> bool {
        self.tls.is_some()
    }

    /// The stream hub.
    pub fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: stops
    /// accepting, ends every publisher and viewer (RTMP peers get their
    /// `onStatus` and the connection is closed, HTTP-FLV bodies end, WebRTC
    /// peers get RTCP BYE and a DTLS close_notify) and returns once every
    /// connection has ended, or after `limits.shutdown_ms`, closing what is
    /// left.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let Server {
            shared,
            rtmp,
            http,
            tls,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();

        // HTTP(S).
        tasks.spawn(httpd::serve(
            http,
            tls,
            http::router(shared.clone()),
            shared.clone(),
            stop_rx.clone(),
        ));

        // Grace-period expiry.
        let hub = shared.hub.clone();
        let aac_hub = shared.aac.hub().clone();
        let mut tick_stop = stop_rx.clone();
        tasks.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        hub.tick(Instant::now());
                        aac_hub.tick(Instant::now());
                    }
                    _ = tick_stop.changed() => break,
                }
            }
        });

        // Stream relays (`relay = ...` on streaming domains).
        tasks.spawn(relay::run(shared.clone(), stop_rx.clone()));
        // Pushes to remote RTMP servers (`push = ...` on ingest domains).
        tasks.spawn(push::run(shared.clone(), stop_rx.clone()));

        // ICE-TCP connections (when `[webrtc] ice_tcp`).
        let tcp_shared = shared.clone();
        let tcp_stop = stop_rx.clone();
        tasks.spawn(async move { rtc::Rtc::accept_tcp(tcp_shared, tcp_stop).await });

        // WebRTC, supervised: a panic in the loop (outside the sessions,
        // which the host contains) starts it again with an empty host
        // rather than leaving HTTP to create sessions nothing serves.
        let rtc_shared = shared.clone();
        let rtc_stop = stop_rx.clone();
        tasks.spawn(async move {
            use futures_util::FutureExt;
            let hub = rtc_shared.hub.clone();
            loop {
                let run = rtc_shared.rtc.run(hub.clone(), rtc_stop.clone());
                match std::panic::AssertUnwindSafe(run).catch_unwind().await {
                    Ok(()) => break,
                    Err(_) => {
                        tracing::error!("webrtc loop panicked; starting it again");
                        hub.metrics().error(metrics::ErrorKind::Internal);
                        rtc_shared.rtc.restart_after_panic(&hub);
                    }
                }
            }
        });

        // RTMP.
        let limits = shared.config.limits;
        let cap =
            accept::ConnLimit::new("rtmp", limits.max_rtmp_connections, limits.max_rtmp_per_ip);
        let mut conns = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                (socket, peer) = accept::next(&rtmp, "rtmp") => match cap.admit(peer.ip()) {
                    Ok(permit) => {
                        let serve = rtmp::serve(socket, peer, shared.clone(), stop_rx.clone());
                        conns.spawn(async move {
                            serve.await;
                            drop(permit);
                        });
                    }
                    Err(full) => {
                        metrics::Metrics::add(&shared.hub.metrics().refused_rtmp, 1);
                        tracing::info!(%peer, "rtmp connection refused: {full}");
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                () = &mut shutdown => break,
            }
        }
        let deadline = limits.shutdown();
        tracing::info!(
            "shutting down: ending publishers and viewers (up to {} ms)",
            deadline.as_millis()
        );
        drop(rtmp);
        shared.hub.shutdown();
        shared.aac.hub().shutdown();
        let _ = stop_tx.send(true);
        let all = async {
            while conns.join_next().await.is_some() {}
            while tasks.join_next().await.is_some() {}
        };
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!(
                "connections still open after {} ms; closing them",
                deadline.as_millis()
            );
            conns.abort_all();
            tasks.abort_all();
        }
        tracing::info!("stopped");
        Ok(())
    }
}
